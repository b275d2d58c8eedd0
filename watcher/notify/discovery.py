"""Messages of the discovery events: a new search match, a nearby site, a no-edit alert.

Pure payloads and routing. Each is its own outbox kind, so a channel can be given just these
(`near: {channels: [...]}`, a search's `channels:`, a channel's `no_edit:`). They render through
every format as a subject and a text (the "alert" path of `formats`), and a JSON webhook gets the
event's data as `event`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from watcher.config import Settings
from watcher.config.searches import Search
from watcher.messages import NearbySitePayload, NewMessage, NewTrialPayload, NoEditPayload
from watcher.models import SEVERITY_RANK, Event, Json, Severity, Trial, study_url
from watcher.notify.routing import channels_for

NOEDIT_HEADLINES = {
    "results_overdue": "results may be overdue",
    "status_unverified": "status not verified for over 2 years",
    "completion_passed": "completion date passed, status still open",
}
EVENT_SEVERITY: Severity = "major"
"""What a channel's `min_severity` compares these events with: a new trial or site is major news."""


def _wants(settings: Settings, name: str) -> bool:
    floor = settings.channels[name].min_severity
    return floor is None or SEVERITY_RANK[EVENT_SEVERITY] >= SEVERITY_RANK[floor]


def search_channels(search: Search, settings: Settings) -> list[str]:
    """Where a search's new matches go: its `channels:`, else every channel its tag routes to."""
    as_trial = Trial(nct_id="", channels=search.channels, tags=(search.tag,))
    return [n for n in channels_for(as_trial, settings.channels) if _wants(settings, n)]


def new_trial_messages(
    search: Search,
    facts: Mapping[str, Json],
    sentence: str,
    settings: Settings,
    *,
    detected_at: datetime,
    nearest: str | None = None,
) -> list[NewMessage]:
    nct_id = str(facts["nct_id"])
    text = sentence + (f"\nNearest site: {nearest}" if nearest else "") + f"\n{study_url(nct_id)}"
    payload = NewTrialPayload(
        subject=f"New trial matching {search.name}: {nct_id}",
        text=text,
        nct_id=nct_id,
        url=study_url(nct_id),
        detected_at=detected_at.isoformat(),
        event=Event("new_trial", sentence, {"search": search.name, **facts}),
        search=search.name,
    )
    return [NewMessage(name, payload) for name in search_channels(search, settings)]


def registry_study_messages(
    channels: Sequence[str], facts: Mapping[str, Json], settings: Settings, *, detected_at: datetime
) -> list[NewMessage]:
    """Whole-registry mode: a study first posted since the last poll, to each channel whose `studies:`
    filter it matches (the filter named as the "search" that found it: `channels.<name>.studies`)."""
    from watcher.detect.newstudies import sentence

    nct_id = str(facts["nct_id"])
    out = []
    for name in channels:
        if name not in settings.channels or not _wants(settings, name):
            continue
        found_by = f"channels.{name}.studies"
        line = sentence(found_by, facts)
        payload = NewTrialPayload(
            subject=f"New trial matching {found_by}: {nct_id}",
            text=f"{line}\n{study_url(nct_id)}",
            nct_id=nct_id,
            url=study_url(nct_id),
            detected_at=detected_at.isoformat(),
            event=Event("new_trial", line, {"search": found_by, **facts}),
            search=found_by,
        )
        out.append(NewMessage(name, payload))
    return out


def nearby_messages(
    trial: Trial, title: str | None, events: Sequence[Event], settings: Settings, *, detected_at: datetime
) -> list[NewMessage]:
    """One message per nearby site: `near.channels` when given, else the trial's own channels."""
    if not events or trial.near is None:
        return []
    names = (
        [n for n in trial.near.channels if n in settings.channels]
        if trial.near.channels is not None
        else channels_for(trial, settings.channels)
    )
    out = []
    for event in events:
        text = f"{event.summary}\n{trial.display}: {title or ''}\n{study_url(trial.nct_id)}"
        payload = NearbySitePayload(
            subject=f"{trial.display}: {event.summary}",
            text=text,
            nct_id=trial.nct_id,
            url=study_url(trial.nct_id),
            detected_at=detected_at.isoformat(),
            event=event,
        )
        out += [NewMessage(n, payload) for n in names if _wants(settings, n)]
    return out


def noedit_messages(
    trial: Trial, title: str | None, event: Event, settings: Settings, *, detected_at: datetime
) -> list[NewMessage]:
    """Only channels that enabled this kind (`channels.<name>.no_edit`) and would hear of the trial."""
    names = [n for n in channels_for(trial, settings.channels) if event.kind in settings.channels[n].no_edit]
    text = f"{event.summary}\n{trial.display}: {title or ''}\n{study_url(trial.nct_id)}"
    payload = NoEditPayload(
        subject=f"{trial.display}: {NOEDIT_HEADLINES.get(event.kind, event.kind)}",
        text=text,
        nct_id=trial.nct_id,
        url=study_url(trial.nct_id),
        detected_at=detected_at.isoformat(),
        event=event,
    )
    return [NewMessage(n, payload) for n in names]
