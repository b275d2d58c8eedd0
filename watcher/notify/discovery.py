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
from watcher.models import SEVERITY_RANK, Event, Json, Severity, Trial, study_url
from watcher.notify.routing import channels_for
from watcher.store.outbox import NewMessage

PAYLOAD_SCHEMA = 1
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


def event_payload(
    kind: str,
    *,
    subject: str,
    text: str,
    nct_id: str,
    event: Event,
    detected_at: datetime,
    extra: Mapping[str, Json] | None = None,
) -> dict[str, Json]:
    return {
        "schema": PAYLOAD_SCHEMA,
        "type": kind,
        "subject": subject,
        "text": text,
        "nct_id": nct_id,
        "url": study_url(nct_id),
        "detected_at": detected_at.isoformat(),
        "event": {"kind": event.kind, "summary": event.summary, "data": dict(event.data)},
        **(extra or {}),
    }


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
    event = Event("new_trial", sentence, {"search": search.name, **facts})
    payload = event_payload(
        "new_trial",
        subject=f"New trial matching {search.name}: {nct_id}",
        text=text,
        nct_id=nct_id,
        event=event,
        detected_at=detected_at,
        extra={"search": search.name},
    )
    return [
        NewMessage(channel=name, nct_id=nct_id, kind="new_trial", payload=payload)
        for name in search_channels(search, settings)
    ]


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
        payload = event_payload(
            "nearby_site",
            subject=f"{trial.display}: {event.summary}",
            text=text,
            nct_id=trial.nct_id,
            event=event,
            detected_at=detected_at,
        )
        out += [
            NewMessage(channel=n, nct_id=trial.nct_id, kind="nearby_site", payload=payload)
            for n in names
            if _wants(settings, n)
        ]
    return out


def noedit_messages(
    trial: Trial, title: str | None, event: Event, settings: Settings, *, detected_at: datetime
) -> list[NewMessage]:
    """Only channels that enabled this kind (`channels.<name>.no_edit`) and would hear of the trial."""
    names = [n for n in channels_for(trial, settings.channels) if event.kind in settings.channels[n].no_edit]
    text = f"{event.summary}\n{trial.display}: {title or ''}\n{study_url(trial.nct_id)}"
    payload = event_payload(
        "no_edit",
        subject=f"{trial.display}: {NOEDIT_HEADLINES.get(event.kind, event.kind)}",
        text=text,
        nct_id=trial.nct_id,
        event=event,
        detected_at=detected_at,
    )
    return [NewMessage(channel=n, nct_id=trial.nct_id, kind="no_edit", payload=payload) for n in names]
