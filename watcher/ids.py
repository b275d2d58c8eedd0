"""NCT IDs: the one place that knows how one is spelled.

The registry answers `nct123`, `NCT0123` and `NCT00000123` alike, so every comparison of IDs
uses `normalize_nct_id`. What a person writes (watchlist, CLI) must already be the full form,
NCT followed by 8 digits in any case: a short spelling there is more likely a typo than intent.
"""

from __future__ import annotations

import re

_SPELLING = re.compile(r"NCT0*([1-9]\d{0,7})", re.IGNORECASE)
_FULL = re.compile(r"NCT\d{8}", re.IGNORECASE)
_IN_TEXT = re.compile(r"(?<![A-Za-z0-9])NCT(\d{8})(?!\d)", re.IGNORECASE)
FULL_FORM = "NCT followed by 8 digits"


def normalize_nct_id(raw: str) -> str:
    """The canonical `NCT` + 8 digits; text that is no ID comes back stripped and upper-cased."""
    text = raw.strip()
    match = _SPELLING.fullmatch(text)
    return f"NCT{int(match.group(1)):08d}" if match else text.upper()


def is_nct_id(raw: str, *, short_ok: bool = False) -> bool:
    """Whether `raw` names a study: the full form, or with `short_ok` any spelling the registry accepts."""
    pattern = _SPELLING if short_ok else _FULL
    return pattern.fullmatch(raw.strip()) is not None


def find_nct_ids(text: str) -> list[str]:
    """Every full-form ID in free text (a pasted list, an e-mail), first occurrence first."""
    return list(dict.fromkeys(f"NCT{m.group(1)}" for m in _IN_TEXT.finditer(text)))
