"""Storage: everything the watcher keeps in its SQL database.

`Store` (`database.py`) is the gateway; it holds the notification queue as `store.outbox`
(`outbox.py`), storage statistics and retention as `store.retention` (`retention.py`) and the
typed `meta` keys as `store.meta` (`meta.py`, where every key is defined); `store.transaction()`
(`transaction.py`) writes a state change and the alerts it causes together.
Values returned to callers are in `values.py` (and `outbox.py` for messages); what a record
says about itself (content hash, dates, title) is read by `watcher.detect.record`. The rest
are internals: `connection.py` (engine, locks), `blobstore.py` and `blobs.py` (records kept
as compressed parts), `writes.py` (a page of new versions in bulk), `baselines.py` (a trial's
first version's "added" changes, derived when read), `schema.py` (tables), `migrate.py` and
`migrations/` (Alembic).
"""

from watcher.store.database import Store

__all__ = ["Store"]
