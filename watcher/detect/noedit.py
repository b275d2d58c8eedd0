"""Alerts that need no edit: conditions a stored record meets just because time passed.

Pure: a record and today's date in, events out. The rules (docs/how-to/searches.md, "Alerts that need no edit"):

- `results_overdue`: FDAAA 801 and its Final Rule (42 CFR 11.44(a)) require results of an
  applicable clinical trial no later than one year after its primary completion date. We read a
  record as "applicable" as ClinicalTrials.gov itself marks it: an interventional study with
  `oversightModule.isFdaRegulatedDrug` or `isFdaRegulatedDevice` true. It is overdue when the
  primary completion date is ACTUAL (an estimated date that passed says the record is stale, the
  other two alerts' business, not that the trial completed) and more than 12 months before today,
  the study was not withdrawn nor is it still "not yet recruiting", `hasResults` is false, and no
  results were submitted (`resultsFirstSubmitDate`, under QC) nor a certification/extension
  request filed (`dispFirstSubmitDate`, 42 CFR 11.44(b)-(e)). We cannot see pre-2017 "pACT" status
  or other legal exceptions: the alert says "may be overdue" and names the rule.
- `status_unverified`: `statusVerifiedDate` more than 2 years ago on a study that is not over.
  ClinicalTrials.gov itself shows such a study's status as UNKNOWN after two years.
- `completion_passed`: `completionDate` is before today while `overallStatus` still says
  RECRUITING or NOT_YET_RECRUITING.

Partial dates (`2023-11`) are read as their last day, so a condition never fires early.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import date
from typing import Any

from watcher.models import Event

NOEDIT_KINDS = ("results_overdue", "status_unverified", "completion_passed")
ONGOING = ("RECRUITING", "NOT_YET_RECRUITING", "ACTIVE_NOT_RECRUITING", "ENROLLING_BY_INVITATION", "SUSPENDED")
OPEN = ("RECRUITING", "NOT_YET_RECRUITING")


def last_day(text: Any) -> date | None:
    """`2024`, `2024-05` or `2024-05-17` as the last day it can mean; None when not a date."""
    if not isinstance(text, str):
        return None
    parts = text.strip().split("-")
    try:
        year = int(parts[0])
        month = int(parts[1]) if len(parts) > 1 else 12
        day = int(parts[2]) if len(parts) > 2 else calendar.monthrange(year, month)[1]
        return date(year, month, day)
    except (ValueError, IndexError):
        return None


def _years_before(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)


def conditions(record: Mapping[str, Any], today: date) -> list[Event]:
    """Every no-edit condition the record meets on `today`, one event each."""
    protocol = record.get("protocolSection") or {}
    status = protocol.get("statusModule") or {}
    oversight = protocol.get("oversightModule") or {}
    design = protocol.get("designModule") or {}
    overall = status.get("overallStatus")
    events: list[Event] = []

    primary = status.get("primaryCompletionDateStruct") or {}
    primary_day = last_day(primary.get("date"))
    regulated = [k for k in ("isFdaRegulatedDrug", "isFdaRegulatedDevice") if oversight.get(k) is True]
    if (
        primary_day is not None
        and primary.get("type") != "ESTIMATED"
        and regulated
        and design.get("studyType") == "INTERVENTIONAL"
        and overall not in ("WITHDRAWN", "NOT_YET_RECRUITING")
        and not record.get("hasResults")
        and not status.get("resultsFirstSubmitDate")
        and not status.get("dispFirstSubmitDate")
        and primary_day < _years_before(today, 1)
    ):
        months = (today.year - primary_day.year) * 12 + today.month - primary_day.month
        events.append(
            Event(
                "results_overdue",
                f"Results may be overdue: primary completion {primary.get('date')}, {months} months ago; "
                f"no results posted and no certification or extension filed "
                f"(FDA-regulated {'drug' if 'isFdaRegulatedDrug' in regulated else 'device'}; FDAAA 801, "
                f"42 CFR 11.44: due within 1 year)",
                {
                    "primary_completion": primary.get("date"),
                    "primary_completion_type": primary.get("type"),
                    "months": months,
                    "regulated": regulated,
                    "rule": "42 CFR 11.44(a)",
                },
            )
        )

    verified = status.get("statusVerifiedDate")
    verified_day = last_day(verified)
    if overall in ONGOING and verified_day is not None and verified_day < _years_before(today, 2):
        events.append(
            Event(
                "status_unverified",
                f"Status {overall} not verified since {verified} (over 2 years; ClinicalTrials.gov shows such a "
                f"status as UNKNOWN)",
                {"status": overall, "verified": verified},
            )
        )

    completion = (status.get("completionDateStruct") or {}).get("date")
    completion_day = last_day(completion)
    if overall in OPEN and completion_day is not None and completion_day < today:
        events.append(
            Event(
                "completion_passed",
                f"Completion date {completion} has passed but the status still says {overall}",
                {"status": overall, "completion": completion},
            )
        )
    return events
