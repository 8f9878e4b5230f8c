"""`make demo` end to end, cold and warm, the defaults beside the torch baseline in one run.

Each configuration runs the demo's three commands (``discover`` with its report,
``assign`` of one sentence, ``recommend`` for one user) twice: *cold* with an empty cache
root (``$USERGROUPS_CACHE`` in a new temporary folder: no embeddings, no ONNX files, no
fit cache) and *warm* (the same commands again). Each command is a fresh process; its
wall time and peak resident memory (``wait4``'s ``ru_maxrss``: the largest process of its
tree, so a child that builds the ONNX model counts) are recorded, with the 1-minute load
average before and after (the machine is shared).

Configurations:

- ``torch``: ``--backend torch --set reuse=false``: the embedding cache only, as before
  issue 16;
- ``default``: no flags (``embedding.backend = auto``: checked int8 ONNX here; the fit
  cache on).

    python bench/demo.py                         # both, cold and warm
    python bench/demo.py --configs default       # one

Results go to ``bench/results/demo.json``; ``bench/run.py --docs-only`` renders them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from results_io import write_results

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "demo.json"
DATASET = "amazon2014:musical-instruments"
USER = "ADH0O8UVJOT10"
CONFIGS: dict[str, list[str]] = {
    "torch": ["--backend", "torch", "--set", "reuse=false"],
    "default": [],
}


def timed(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``cmd``; its wall seconds and the peak RSS (MB) of its process tree."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.stdout and proc.stdout.read()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({code}):\n{err[-3000:]}")
    return {
        "seconds": round(wall, 2),
        # user + system seconds of the command and the children it waited for: on a shared
        # machine the wall time says how busy it was, this what the command cost
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def _cpu_model() -> str:
    """The CPU's model name and whether it has AVX-512 VNNI (int8 speed depends on it)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if "model name" in ln), "")
    vnni = "avx512_vnni" in info
    return f"{name or 'unknown'}, {os.cpu_count()} cores, {'AVX-512 VNNI' if vnni else 'no VNNI'}"


def run_config(name: str, flags: list[str]) -> dict[str, Any]:
    exe = str(Path(sys.executable).with_name("usergroups"))
    with tempfile.TemporaryDirectory(prefix=f"ug-demo-{name}-") as tmp:
        env = {
            **os.environ,
            "USERGROUPS_CACHE": str(Path(tmp) / "cache"),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        }
        for var in ("USERGROUPS_MODELS", "USERGROUPS_FITS"):
            env.pop(var, None)  # cold means cold: everything under the new cache root
        model = str(Path(tmp) / "demo")
        discover = ["discover", "--dataset", DATASET, "--out", model, "--force", "--no-progress"]
        text = "I need strings for my acoustic guitar"
        commands = {
            "discover": [exe, *discover, *flags],
            "assign": [exe, "assign", model, "--text", text, "-n", "5"],
            "recommend": [exe, "recommend", model, "--user", USER, "-n", "5"],
        }
        out: dict[str, Any] = {
            "flags": flags,
            "omp_num_threads": env.get("OMP_NUM_THREADS", "unset"),
            "cpu": _cpu_model(),
        }
        for phase in ("cold", "warm"):
            steps = {step: timed(cmd, env) for step, cmd in commands.items()}
            out[phase] = {
                "steps": steps,
                "seconds": round(sum(s["seconds"] for s in steps.values()), 1),
                "cpu_seconds": round(sum(s["cpu_seconds"] for s in steps.values()), 1),
                "peak_rss_mb": max(s["peak_rss_mb"] for s in steps.values()),
            }
            print(name, phase, json.dumps(out[phase]), flush=True)
        return out


def render_markdown(result: dict[str, Any]) -> str:
    """The section of docs/benchmarks.md (rendered by ``bench/run.py``)."""
    runs = result.get("runs", {})
    lines = [
        "## `make demo` end to end, cold and warm (bench/demo.py)",
        "",
        f"Command: `{result.get('command', 'python bench/demo.py')}`; "
        f"{result.get('measured', '')}, {result.get('cpu_count')} cores, shared machine "
        "(the load average is in each row). Cold: an empty cache root (no embeddings, no "
        "ONNX files, no fit cache); warm: the same three commands again. Peak memory: the "
        "largest process of each command's tree.",
        "",
        "| configuration | run | discover s | assign s | recommend s | total s | CPU s "
        "| peak MB | load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, run in runs.items():
        flags = " ".join(run.get("flags") or []) or "defaults"
        for phase in ("cold", "warm"):
            p = run.get(phase)
            if not p:
                continue
            st = p["steps"]
            loads = [v["load_before"] for v in st.values()]
            lines.append(
                f"| {name} (`{flags}`) | {phase} | {st['discover']['seconds']:.1f} | "
                f"{st['assign']['seconds']:.2f} | {st['recommend']['seconds']:.2f} | "
                f"{p['seconds']:.1f} | {p.get('cpu_seconds', '–')} | {p['peak_rss_mb']:,.0f} | "
                f"{min(loads):.1f}–{max(loads):.1f} |"
            )
    if result.get("note"):
        lines += ["", str(result["note"])]
    if "torch" in runs and "default" in runs:
        ratio = runs["torch"]["cold"]["seconds"] / max(runs["default"]["cold"]["seconds"], 1e-9)
        lines += ["", f"Cold run, torch ÷ defaults: **{ratio:.2f}×**."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args(argv)
    runs = {name: run_config(name, CONFIGS[name]) for name in args.configs}
    write_results(RESULTS, "demo.py", argv, runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
