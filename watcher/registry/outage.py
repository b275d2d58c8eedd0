"""One problem, not hundreds: telling a registry-wide failure from trials failing on their own."""

from __future__ import annotations

import re
from collections.abc import Mapping

from watcher.errors import ApiError

REGISTRY_WIDE_MIN = 3
"""Fewer trials failing alike are alerted one by one."""


def _reason(error: ApiError) -> str:
    """An error's kind and message without the trial IDs and query strings that vary between trials."""
    return f"{type(error).__name__}: " + re.sub(r"\?\S*|NCT\d{8}", "…", str(error))


def registry_wide(failures: Mapping[str, ApiError], polled: int) -> tuple[ApiError, frozenset[str]] | None:
    """(an example error, the trials) when most of the `polled` trials failed for one reason."""
    groups: dict[str, list[str]] = {}
    for nct_id, error in failures.items():
        groups.setdefault(_reason(error), []).append(nct_id)
    if not groups:
        return None
    ids = max(groups.values(), key=len)
    if len(ids) < REGISTRY_WIDE_MIN or 2 * len(ids) <= polled:
        return None
    return failures[ids[0]], frozenset(ids)
