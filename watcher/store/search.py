"""The watch list's text search as one SQL condition, answered by an index at any size.

An NCT ID, or its beginning (`NCT0451`), is a range of the primary key. Words are looked up in
revision 0008's word index over title, conditions and sponsor (SQLite FTS5, PostgreSQL `tsvector`
with a GIN index): every word must appear, each as a whole word or the start of one, in any case
(`breast canc` finds "Breast Cancer"). A `LIKE '%…%'` scan, what this replaced, read every row:
seconds a query at 500,000 trials. Text without a letter or digit falls back to it.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import and_, func, or_, text

from watcher.store.schema import TrialRow

NCT_PREFIX = re.compile(r"(?i)^nct\d{0,8}$")
WORD = re.compile(r"\w+")
MAX_WORDS = 10
# the expression revision 0008 indexes on PostgreSQL: a query must spell it the same to use the index
SEARCHED = "coalesce(title, '') || ' ' || coalesce(conditions, '') || ' ' || coalesce(sponsor, '')"


def id_range(prefix: str) -> tuple[str, str | None]:
    """[low, high) of the NCT IDs starting with `prefix` (digits compare alike in every collation)."""
    low = prefix.upper()
    digits = low[3:]
    if not digits:
        return low, None
    following = str(int(digits) + 1).rjust(len(digits), "0")
    return low, ("NCU" if len(following) > len(digits) else f"NCT{following}")


def fts_query(words: list[str]) -> str:
    """An FTS5 query: each word a quoted prefix, all of them required."""
    return " ".join(f'"{w}"*' for w in words)


def tsquery(words: list[str]) -> str:
    """A PostgreSQL `to_tsquery` text: each word a prefix (`:*`), all of them required."""
    return " & ".join(f"{w}:*" for w in words)


def search_condition(searched: str, dialect: str, *, many: bool = False) -> Any:
    """The condition on `trials` for the search box's text. `many`: the words match many trials, so
    SQLite should walk the sort's index and keep the matches (`+rowid` stops it from reading every
    match first and sorting them); for a few matches, reading them first is the fast way."""
    searched = searched.strip()
    if NCT_PREFIX.match(searched):
        low, high = id_range(searched)
        return TrialRow.nct_id >= low if high is None else and_(TrialRow.nct_id >= low, TrialRow.nct_id < high)
    words = WORD.findall(searched.lower())[:MAX_WORDS]
    if not words:
        return _like_anywhere(searched)
    if dialect == "postgresql":
        return text(f"to_tsvector('simple', {SEARCHED}) @@ to_tsquery('simple', :tsq)").bindparams(tsq=tsquery(words))
    rowid = "+trials.rowid" if many else "trials.rowid"
    return text(f"{rowid} IN (SELECT rowid FROM trials_search WHERE trials_search MATCH :fts)").bindparams(
        fts=fts_query(words)
    )


def _like_anywhere(searched: str) -> Any:
    escaped = searched.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped.lower()}%"
    columns = (TrialRow.nct_id, TrialRow.title, TrialRow.conditions, TrialRow.sponsor)
    return or_(*(func.lower(func.coalesce(c, "")).like(pattern, escape="\\") for c in columns))


def sqlite_words_count(searched: str, cap: int) -> Any | None:
    """On SQLite, the count (up to `cap` + 1) of the trials whose words match, from the word index
    alone: a search with no other filter needs no row of `trials` to be counted. None when the text
    is an NCT ID or has no word."""
    searched = searched.strip()
    words = WORD.findall(searched.lower())[:MAX_WORDS]
    if NCT_PREFIX.match(searched) or not words:
        return None
    return text(
        "SELECT count(*) FROM (SELECT rowid FROM trials_search WHERE trials_search MATCH :fts LIMIT :cap)"
    ).bindparams(fts=fts_query(words), cap=cap + 1)
