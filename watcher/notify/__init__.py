"""Notifications: from classified changes to messages people receive.

`payloads` builds what the cycle stores in the outbox, `routing` picks channels, `formats/` renders
per channel (pure), `digest` folds and schedules, `delivery` runs one worker per channel that claims,
sends and marks outbox messages (`claims` tells a dead claimer from a live one), and `send` is the
channel edge: `mail` (smtplib), `hook` (httpx) and apprise for every other service.
"""
