"""Full records in pages of up to 1,000, handed on one at a time: the first sync and the full re-fetch.

`CtGovClient.walk` reads a page a study at a time (`pages.py`); here each study is checked and
attributed to the ID it answers as it comes, so no more than one parsed record is held, whatever the
page size. What the buffered `CtGovClient.fetch_studies` decides after seeing a whole page is decided
here as early as it safely can be:

- a study under its own, asked-for ID is handed on at once; a second one claiming the same ID later
  in the page is logged (`api.duplicate_study`) and left out — the first stands;
- a study that answers an ID only as an alias waits for the end of its batch, where a study under
  that ID itself wins over it (registries have duplicates), as before;
- a page that fails half-way (cut short, not JSON) fails the IDs not yet answered; those answered
  came whole and stand. Nothing partial is ever handed on, so no "removed" alert can come of it;
- a reply mostly about studies not asked for fails the IDs not yet answered as a batch, instead of
  sending one confirming GET for each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import structlog

from watcher.errors import ApiError, InvalidResponse
from watcher.ids import is_nct_id, normalize_nct_id
from watcher.registry.ahead import Ahead
from watcher.registry.client import CtGovClient
from watcher.registry.pages import MAX_PAGE_SIZE
from watcher.registry.responses import BatchResult, Fetched, choose, owners, peek_id, validate_study

log = structlog.get_logger("watcher.registry.stream")

OnBatch = Callable[[BatchResult], None]


def stream_studies(client: CtGovClient, ids: Sequence[str], on_batch: OnBatch) -> None:
    """Full records for `ids`: `on_batch` gets one record (or a batch's errors and missing IDs) at a time.

    Batches hold `min(api.batch_size, api.full_page_size)` IDs, one page each (`pageSize=1000`), and
    are fetched one after the other: the records go to the caller's thread as they are read.
    """
    wanted: list[str] = []
    invalid: dict[str, ApiError] = {}
    for nct_id in dict.fromkeys(ids):
        if is_nct_id(nct_id, short_ok=True):
            wanted.append(nct_id)
        else:
            invalid[nct_id] = ApiError(f"{nct_id!r} is not an NCT ID")
    if invalid:
        on_batch(BatchResult(errors=invalid))
    size = max(1, min(client.settings.batch_size, client.settings.full_page_size))
    batches = [_Batch(client, wanted[start : start + size], on_batch) for start in range(0, len(wanted), size)]
    with Ahead(client.studies_body) as ahead:  # each batch's page fetched while the one before is stored
        for number, batch in enumerate(batches):
            batch.run(ahead, batches[number + 1].query if number + 1 < len(batches) else None)


class _Batch:
    def __init__(self, client: CtGovClient, batch: list[str], on_batch: OnBatch) -> None:
        self.client = client
        self.batch = batch
        self.on_batch = on_batch
        self.by_id: dict[str, list[str]] = {}
        for nct_id in batch:  # `nct123` and `NCT00000123` asked together both get the record
            self.by_id.setdefault(normalize_nct_id(nct_id), []).append(nct_id)
        self.answered: set[str] = set()
        self.aliased: dict[str, list[Any]] = {}  # owner ID → studies listing it as an alias
        self.studies = 0
        self.unexpected = 0

    @property
    def query(self) -> dict[str, str]:
        return {"filter.ids": ",".join(self.batch), "pageSize": str(MAX_PAGE_SIZE)}

    def run(self, ahead: Ahead, then: Mapping[str, str] | None) -> None:
        try:
            self.client.walk(self.query, self._study, expect=len(self.batch), ahead=ahead, then=then)
        except ApiError as exc:
            log.warning(
                "api.batch_failed",
                ids=len(self.batch),
                first_id=self.batch[0],
                error=str(exc),
                error_type=type(exc).__name__,
                answered=len(self.answered),
            )
            self._fail_the_rest(exc)
            return
        for owner, found in self.aliased.items():
            claims = [(False, study) for study in found]
            for requested in self.by_id[owner]:
                if requested not in self.answered:
                    self._settle(requested, partial(choose, claims))
        if self.unexpected >= 2 and 2 * self.unexpected > self.studies:
            error = InvalidResponse(
                f"/studies: {self.unexpected} of the {self.studies} studies answered were "
                f"not asked for; the batch is retried next cycle"
            )
            log.warning(
                "api.batch_failed",
                ids=len(self.batch),
                first_id=self.batch[0],
                error=str(error),
                error_type="InvalidResponse",
                reason="wrong studies",
            )
            self._fail_the_rest(error)
            return
        missing = {i for i in self.batch if i not in self.answered}
        if missing:
            self.on_batch(BatchResult(missing=missing))

    def _study(self, study: Any) -> None:
        self.studies += 1
        claimants = owners(study, self.by_id)
        if not claimants:
            self.unexpected += 1
            log.warning("api.unexpected_study", nct_id=peek_id(study), reason="not among the asked IDs")
            return
        own = normalize_nct_id(peek_id(study) or "")
        for owner in claimants:
            if owner != own:
                self.aliased.setdefault(owner, []).append(study)
                continue
            for requested in self.by_id[owner]:
                if requested in self.answered:
                    log.warning(
                        "api.duplicate_study", nct_id=requested, reason="a second record claims it; the first stands"
                    )
                    continue
                self._settle(requested, partial(validate_study, study))

    def _settle(self, requested: str, check: Callable[[str], Fetched]) -> None:
        self.answered.add(requested)
        try:
            fetched = check(requested)
        except InvalidResponse as exc:
            log.warning("api.invalid_response", nct_id=requested, reason=str(exc))
            self.on_batch(BatchResult(errors={requested: exc}))
            return
        self.on_batch(BatchResult(records={requested: fetched}))

    def _fail_the_rest(self, error: ApiError) -> None:
        rest = [i for i in self.batch if i not in self.answered]
        self.answered.update(rest)
        if rest:
            self.on_batch(BatchResult(errors=dict.fromkeys(rest, error)))


def walk_registry(client: CtGovClient, on_study: Callable[[Fetched], None], *, advanced: str | None = None) -> int:
    """Every study of the registry (or of a `filter.advanced` query), full records, 1,000 a page,
    each checked and handed on as it is read; a study that is not a usable record is logged and
    skipped. Returns the number of studies read; raises ApiError where a page fails."""
    params = {"pageSize": str(MAX_PAGE_SIZE), "countTotal": "true"}
    if advanced:
        params["filter.advanced"] = advanced

    def one(study: Any) -> None:
        try:
            fetched = validate_study(study, None)
        except InvalidResponse as exc:
            log.warning("api.invalid_study", reason=str(exc), endpoint="/studies", nct_id=peek_id(study))
            return
        on_study(fetched)

    return client.walk(params, one)
