"""The exception tree. Foreign exceptions are translated at the boundary that meets them.

TrialWatchError
├── ConfigError            settings or watchlist invalid; carries every problem (exit 2)
├── ApiError               ClinicalTrials.gov could not give us a usable answer
│   ├── TransientApiError  timeout, connection error, 429, 5xx: retried, then this cycle fails
│   ├── InvalidResponse    200 but not a usable study record (HTML, truncated, wrong nctId)
│   ├── AccessDenied       403: the edge refused us; not hammered, the cycle backs off
│   └── StudyNotFound      404: permanent, reported once
├── StorageError           the database refused or is unreachable
├── BackfillError          past versions could not be placed (history unreachable, moved meanwhile)
├── NotifyError            a channel did not accept a message
└── PayloadError           a stored outbox payload this version cannot read (parked, never retried)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class TrialWatchError(Exception):
    """Base of every error TrialWatch raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One configuration problem: where it is and what was expected."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(TrialWatchError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{count} configuration problem{'s' if count != 1 else ''}:\n{lines}")


class ApiError(TrialWatchError):
    """ClinicalTrials.gov did not give a usable answer."""


class TransientApiError(ApiError):
    """Worth retrying later: timeouts, connection errors, 429 and 5xx."""


class InvalidResponse(ApiError):
    """A response that must not become a snapshot (not JSON, truncated, wrong study)."""


class AccessDenied(ApiError):
    """403 from ClinicalTrials.gov: retrying at once would not help, and would look like abuse."""


class StudyNotFound(ApiError):
    def __init__(self, nct_id: str) -> None:
        self.nct_id = nct_id
        super().__init__(f"{nct_id} was not found on ClinicalTrials.gov (404): check the watchlist")


class StorageError(TrialWatchError):
    """The snapshot database failed."""


class NotifyError(TrialWatchError):
    """A channel did not accept a message."""


class BackfillError(TrialWatchError):
    """A backfill that could not be done (the trial is unknown, the history moved meanwhile, …)."""


class PayloadError(TrialWatchError):
    """A stored outbox payload this version cannot read: damaged, or written by a newer TrialWatch."""
