"""Notifications: from classified changes to messages people receive.

`payloads` builds what the cycle stores in the outbox, `routing` picks channels, `formats/` renders
per channel (pure), `digest` folds and schedules, and `delivery` is the apprise edge that claims,
sends and marks outbox messages.
"""
