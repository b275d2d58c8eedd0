"""What discovery remembers: the studies each saved search matched, and the no-edit
alerts already sent, so each new match and each condition is announced once.

A `Store` holds one `DiscoveryStore` as `store.discovery`. Methods ending in `_in` take the
caller's open session, so a match and the messages announcing it commit together.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from watcher.config import Config
from watcher.messages import NewMessage
from watcher.models import Json, Trial
from watcher.store.outbox import OutboxQueue
from watcher.store.schema import NoEditEventRow, SearchMatchRow


@dataclass(frozen=True, slots=True)
class Match:
    search: str
    nct_id: str
    first_seen_at: datetime
    baseline: bool
    title: str | None


class DiscoveryStore:
    def __init__(self, session: Callable[[], AbstractContextManager[Session]]) -> None:
        self._session = session

    # -- search matches ---------------------------------------------------------------------------

    def matched(self, search: str) -> set[str]:
        with self._session() as s:
            return set(s.scalars(select(SearchMatchRow.nct_id).where(SearchMatchRow.search == search)))

    def matches(self, searches: Collection[str] | None = None) -> list[Match]:
        """Every recorded match (of these searches), oldest first."""
        with self._session() as s:
            query = select(SearchMatchRow).order_by(SearchMatchRow.first_seen_at, SearchMatchRow.nct_id)
            if searches is not None:
                query = query.where(SearchMatchRow.search.in_(list(searches)))
            return [Match(r.search, r.nct_id, r.first_seen_at, bool(r.baseline), r.title) for r in s.scalars(query)]

    def record_matches(
        self,
        search: str,
        found: Mapping[str, str | None],
        *,
        at: datetime,
        baseline: bool,
        messages: Iterable[NewMessage] = (),
        keep_only: bool = False,
    ) -> None:
        """Record `found` (NCT ID → title) as matched by `search`, with the messages announcing them,
        in one transaction. `keep_only`: a new baseline (the query changed) forgets the others."""
        with self._session() as s:
            known = set(s.scalars(select(SearchMatchRow.nct_id).where(SearchMatchRow.search == search)))
            if keep_only:
                gone = known - set(found)
                if gone:
                    s.execute(
                        delete(SearchMatchRow).where(
                            SearchMatchRow.search == search, SearchMatchRow.nct_id.in_(sorted(gone))
                        )
                    )
            for nct_id, title in found.items():
                if nct_id not in known:
                    s.add(
                        SearchMatchRow(search=search, nct_id=nct_id, first_seen_at=at, baseline=baseline, title=title)
                    )
            OutboxQueue.enqueue_in(s, list(messages), at)

    def forget_search(self, search: str) -> int:
        """Drop a search's matches (`trialwatch search remove --forget`); returns how many."""
        with self._session() as s:
            gone = set(s.scalars(select(SearchMatchRow.nct_id).where(SearchMatchRow.search == search)))
            s.execute(delete(SearchMatchRow).where(SearchMatchRow.search == search))
            return len(gone)

    # -- no-edit alerts ---------------------------------------------------------------------------

    def sent_conditions(self) -> dict[tuple[str, str], Json]:
        """(NCT ID, kind) → detail of every condition announced and not cleared since."""
        with self._session() as s:
            return {(r.nct_id, r.kind): r.detail for r in s.scalars(select(NoEditEventRow))}

    def record_conditions(
        self,
        raised: Mapping[tuple[str, str], Json],
        cleared: Iterable[tuple[str, str]],
        *,
        at: datetime,
        messages: Iterable[NewMessage] = (),
    ) -> None:
        """Remember conditions announced (with their messages, one transaction) and forget those that no
        longer hold, so a condition that comes back (a new date passes again) is announced again."""
        with self._session() as s:
            for nct_id, kind in cleared:
                s.execute(delete(NoEditEventRow).where(NoEditEventRow.nct_id == nct_id, NoEditEventRow.kind == kind))
            for (nct_id, kind), detail in raised.items():
                s.merge(NoEditEventRow(nct_id=nct_id, kind=kind, sent_at=at, detail=detail))
            OutboxQueue.enqueue_in(s, list(messages), at)


def found_trials(config: Config, discovery: DiscoveryStore) -> tuple[Trial, ...]:
    """The matches of `watch: true` searches not listed in the watchlist, as trials tagged with the
    search's name (a trial two searches found carries both tags; the first search's options)."""
    watching = {s.name: s for s in config.watchlist.searches if s.watch}
    if not watching:
        return ()
    listed = {t.nct_id for t in config.watchlist.trials}
    found: dict[str, Trial] = {}
    for match in discovery.matches(list(watching)):
        if match.nct_id in listed:
            continue
        search = watching[match.search]
        if match.nct_id in found:
            first = found[match.nct_id]
            found[match.nct_id] = replace(first, tags=(*first.tags, search.tag))
            continue
        found[match.nct_id] = Trial(
            nct_id=match.nct_id,
            channels=search.channels,
            tags=(search.tag,),
            min_severity=search.min_severity,
            near=search.near,
            source=search.source,
        )
    return tuple(found.values())


def watched_trials(config: Config, discovery: DiscoveryStore) -> tuple[Trial, ...]:
    """Every trial polled: the watchlist's and those its `watch: true` searches added. What `status`,
    heartbeats and feeds count and show, so a trial a search found is not invisible there."""
    return (*config.watchlist.trials, *found_trials(config, discovery))
