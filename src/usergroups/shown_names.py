"""How an item is shown to people: its title, a name derived from its reviews, or its id.

Kept apart from :mod:`usergroups.profiling` (which derives the names, with pandas) so the
answer path of ``usergroups assign`` and ``recommend`` shows items without it (issue 25);
:mod:`usergroups.profiling` re-exports these names.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["DERIVED_MARK", "NameSource", "shown_name"]

NameSource = Literal["title", "reviews", ""]
"""Where an item's displayed name comes from: its title, its reviews, or nowhere (its id)."""

DERIVED_MARK = "[from reviews]"
"""Put before a derived name wherever one is shown as text, so nobody mistakes it for a title."""


def shown_name(item_id: str, name: str, source: str) -> str:
    """An item as people read it: the title, ``[from reviews] a / b / c``, or else the id.

    The terms of a derived name are joined by ``/`` so a list of names still reads as one
    name per item.

    Examples
    --------
    >>> shown_name("B0002E1G5C", "elixir, nanoweb, coated", "reviews")
    '[from reviews] elixir / nanoweb / coated'
    >>> shown_name("B0002E1G5C", "", "")
    'B0002E1G5C'
    """
    if not name:
        return str(item_id)
    if source == "reviews":
        return f"{DERIVED_MARK} {name.replace(', ', ' / ')}"
    return name
