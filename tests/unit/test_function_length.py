"""Functions a reader can hold (issue 21): no function in ``src/`` is longer than
:data:`MAX_LINES` lines, its docstring included, unless its docstring says why, in a
sentence starting "Long because"; with or without a reason, none has more than
:data:`MAX_LINES` lines of code (its docstring not counted)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "usergroups"

MAX_LINES = 80


def code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from ``def`` to the last statement, less the docstring's."""
    assert node.end_lineno is not None
    lines = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        assert first.end_lineno is not None
        lines -= first.end_lineno - first.lineno + 1
    return lines


def long_functions(root: Path) -> list[str]:
    """``path:line name (n lines)`` of every function over the limit without a reason, and
    of every function with more than the limit in code alone."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            assert node.end_lineno is not None
            n = node.end_lineno - node.lineno + 1
            reason = "Long because" in (ast.get_docstring(node) or "")
            if (n > MAX_LINES and not reason) or code_lines(node) > MAX_LINES:
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({n} lines)")
    return found


def test_no_function_is_too_long_to_hold_without_a_reason() -> None:
    assert long_functions(SRC) == []


def test_the_rule_finds_a_long_function_and_accepts_a_reason(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES - 1))  # with the def: 80
    (tmp_path / "a.py").write_text(f'def long():\n    """Short."""\n{body}')
    (tmp_path / "b.py").write_text(f'def fine():\n    """Long because a table."""\n{body}')
    (tmp_path / "c.py").write_text(f"def short():\n{body}")
    dense = body + "    y = 0\n"  # 81 lines of code: a reason does not cover that
    (tmp_path / "d.py").write_text(f'def dense():\n    """Long because."""\n{dense}')
    assert long_functions(tmp_path) == [
        f"a.py:1 long ({MAX_LINES + 1} lines)",
        f"d.py:1 dense ({MAX_LINES + 2} lines)",
    ]
