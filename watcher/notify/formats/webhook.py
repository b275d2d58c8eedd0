"""The JSON webhook format: a structured, versioned document (schema `trialwatch.notification`)
beside apprise's own title/message envelope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from watcher.models import Json
from watcher.notify.formats.common import Rendered

SCHEMA = "trialwatch.notification"
SCHEMA_VERSION = 1


def _json_change(change: Mapping[str, Any], summarised: Mapping[str, str]) -> dict[str, Json]:
    doc: dict[str, Json] = {
        key: change[key] for key in ("field", "change", "old", "new", "old_text", "new_text", "severity", "event")
    }
    doc["summarised"] = summarised.get(change["field"])
    return doc


def _json_trial(trial: Mapping[str, Any]) -> dict[str, Json]:
    summarised = trial.get("summarised") or {}
    return {
        "trial": {"nct_id": trial["nct_id"], "label": trial["label"], "title": trial["title"]},
        "record_version": trial["version"],
        "detected_at": trial["detected_at"],
        "severity": trial["severity"],
        "changes": [_json_change(c, summarised) for c in trial["changes"]],
        "summaries": [
            {"family": e["family"], "summary": e["summary"], "changes": e["count"]}
            for e in trial["entries"]
            if e.get("family")
        ],
        "links": {"study": trial["url"], "history": trial["history_url"]},
    }


def document(ctx: Mapping[str, Any]) -> dict[str, Json]:
    """The webhook's structured fields, schema `trialwatch.notification` version 1 (README).

    They sit beside apprise's own envelope, so no key may be one of its names (`version`,
    `title`, `message`, `attachments`, `type`): apprise would read it as a rename.
    """
    doc: dict[str, Json] = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "kind": ctx["kind"],
        "test": ctx["test"],
        "message_id": ctx["message_id"],
        "channel": ctx["channel"],
        "created_at": ctx["created_at"],
        "sent_at": ctx["sent_at"],
        "delayed_seconds": ctx["delay_seconds"] if ctx["delay"] else 0,
    }
    if ctx["kind"] == "changes" and ctx["trial"]:
        doc.update(_json_trial(ctx["trial"]))
    elif ctx["kind"] == "digest":
        doc.update(
            since=ctx["since"],
            until=ctx["until"],
            severity=ctx["severity"],
            trials=[_json_trial(t) for t in ctx["trials"]],
        )
    else:
        doc.update(subject=ctx.get("subject"), text=ctx.get("text"))
        for key in ("nct_id", "trials_watched", "last_poll", "next_poll", "event", "search"):
            if key in ctx:
                doc[key] = ctx[key]
    return doc


def json_webhook(ctx: Mapping[str, Any]) -> Rendered:
    return Rendered(title=ctx["title"], parts=(ctx["body_text"],), body_format="text", document=document(ctx))
