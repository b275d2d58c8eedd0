"""The requests of `trialwatch doctor`, over the service's own transport; judged by `watcher.registry.doctor`.

Thin on purpose: which request follows which (the IDs of one answer feed the next question), and
nothing else. Each reply goes to a pure check. About a dozen requests, at the configured rate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import urljoin

from watcher.config import ApiSettings
from watcher.errors import BackfillError
from watcher.registry import doctor
from watcher.registry.client import PROBE_FIELDS
from watcher.registry.doctor import Check
from watcher.registry.responses import Reply
from watcher.registry.transport import Transport

UNKNOWN_ID = "NCT99999999"  # well-formed, never registered: 404 on the live service (2026-10-14)
DEFAULT_ALIAS = "NCT00009113"  # an old alias: 301 to NCT00010647 on the live service (2026-10-14)
BATCH = ApiSettings().batch_size  # the probe's batch, as the poll sends it
SINCE_DAYS = 7


@dataclass(frozen=True, slots=True)
class Plan:
    """What to ask about: IDs known to exist (the watchlist), and optional choices of study and alias."""

    known: Sequence[str] = ()
    study: str | None = None
    alias: str | None = None


def _pad(ids: Sequence[str], size: int) -> list[str]:
    """`ids`, then well-formed IDs unlikely to be confused with them, up to `size` (absent IDs are fine)."""
    out = list(dict.fromkeys(ids))[:size]
    number = 10_000_001
    while len(out) < size:
        candidate = f"NCT{number:08d}"
        if candidate not in out:
            out.append(candidate)
        number += 7
    return out


def run(transport: Transport, history_base: Callable[[], str], plan: Plan, *, today: date) -> list[Check]:
    checks: list[Check] = []
    version = transport.exchange("/version")
    checks += [doctor.check_user_agent(version), doctor.check_version(version)]
    day = ((doctor.data_day(version) or today) - timedelta(days=SINCE_DAYS)).isoformat()

    since = transport.exchange(
        "/studies",
        {
            "filter.advanced": f"AREA[LastUpdatePostDate]RANGE[{day},MAX]",
            "fields": ",".join(PROBE_FIELDS),
            "pageSize": "1000",
            "countTotal": "true",
        },
    )
    checks.append(doctor.check_updated_since(since, day))
    recent = doctor.studies_in(since)
    known = list(dict.fromkeys([*plan.known, *(n for s in recent if (n := doctor.nct_of(s)))]))[:BATCH]

    asked = _pad(known, BATCH)
    batch = transport.exchange(
        "/studies", {"filter.ids": ",".join(asked), "fields": ",".join(PROBE_FIELDS), "pageSize": "1000"}
    )
    checks.append(doctor.check_batch(batch, asked, known, PROBE_FIELDS))
    answered = doctor.studies_in(batch) or recent
    ids = [n for s in answered if (n := doctor.nct_of(s))]

    pair = ids[:2]
    pages: list[Reply] = []
    token: str | None = None
    while len(pair) == 2 and len(pages) < 3 and (token or not pages):
        params = {"filter.ids": ",".join(pair), "fields": "NCTId", "pageSize": "1"}
        if token:
            params["pageToken"] = token
        pages.append(transport.exchange("/studies", params))
        token = doctor.next_token(pages[-1])
    checks.append(
        doctor.check_paging(pages, pair)
        if pages
        else Check("full-page token", False, f"could not test: {len(pair)} known studies answered, 2 needed")
    )

    alias = plan.alias or next((a for s in [*answered, *recent] for a in doctor.aliases_in(s)), DEFAULT_ALIAS)
    first = transport.exchange(f"/studies/{alias}", {"fields": "NCTId,NCTIdAlias"})
    followed = None
    if first.status == 301 and first.headers.get("location"):
        followed = transport.exchange(urljoin(first.url, first.headers["location"]))
    checks.append(doctor.check_alias(first, followed, alias))

    checks.append(doctor.check_not_found(transport.exchange(f"/studies/{UNKNOWN_ID}"), UNKNOWN_ID))

    study = plan.study or next((n for n in plan.known if n in ids), ids[0] if ids else None)
    checks += _history(transport, history_base, study)
    return checks


def _history(transport: Transport, history_base: Callable[[], str], study: str | None) -> list[Check]:
    names = ("history index", "history version", "history markup")
    if study is None:
        return [Check(n, False, "no study to ask about: add one to the watchlist or pass --study") for n in names]
    try:
        base = history_base()
    except BackfillError as exc:  # api.base_url gives no /api/int and backfill.base_url is not set
        return [Check(n, False, str(exc)) for n in names]
    index_check, entries = doctor.check_history_index(
        transport.exchange(f"{base}/studies/{study}", {"history": "true"}), study
    )
    if not entries:
        return [index_check, *(Check(n, False, "no version index to go on") for n in names[1:])]
    last = entries[-1].version
    version_check, past = doctor.check_history_version(
        transport.exchange(f"{base}/studies/{study}/history/{last}"), study, last
    )
    markup_check = doctor.check_history_markup(past, transport.exchange(f"/studies/{study}"), study)
    return [index_check, version_check, markup_check]
