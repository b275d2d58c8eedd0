"""Hostile inputs built in code: a YAML alias bomb, deeply nested study JSON, control characters."""

from __future__ import annotations

import itertools

LOL_LEVELS = 9


def alias_bomb(levels: int = LOL_LEVELS, top: str = "bomb") -> str:
    """'Billion laughs': nine strings, then `levels` lines each of nine aliases of the line before;
    a few hundred bytes that stand for 9**(levels + 1) strings. The last anchor is named `top`."""
    names = [f"l{n}" for n in range(levels)] + [top]
    lines = [f'{names[0]}: &{names[0]} ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for before, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{before}"] * 9) + "]")
    return "\n".join(lines) + "\n"
