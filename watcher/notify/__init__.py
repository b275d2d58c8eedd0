"""Notifications: from classified changes to messages people receive.

The payloads are defined once, typed and versioned, in `watcher.messages`. Here: `payloads` builds
a change set's messages and runs `notify_tick`, `routing` picks channels and `discovery` builds the
discovery events' messages (both pure), `formats/` renders per channel (pure: a typed `Context`
per delivery), `digest` folds and schedules, `delivery` runs one worker per channel that claims,
sends and marks outbox messages (`claims` tells a dead claimer from a live one), and `send` is the
channel edge: `mail` (smtplib), `hook` (httpx) and apprise for every other service. `schema`
prints the webhook document's JSON Schema.
"""
