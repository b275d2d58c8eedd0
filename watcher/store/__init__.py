"""Storage: everything the watcher keeps in its SQL database.

`Store` (`database.py`) is the gateway: `with Store(url) as store:`. It holds one collaborator per
kind of stored data: `store.versions` (`versions.py`), `store.changes` (`changes.py`),
`store.trials` (`trials.py`), `store.cycles` (`cycles.py`), `store.outbox` (`outbox.py`),
`store.retention` (`retention.py`, with the daily schedule housekeeping calls) and
`store.discovery` (`discovery.py`), and the typed `meta` keys as `store.meta` (`meta.py`, where
every key is defined); `store.transaction()` (`transaction.py`) writes a state change and the
alerts it causes together. Values returned to callers are in `values.py` (and
`outbox.py` for messages); what a record says about itself (content hash, dates, title) is read
by `watcher.detect.record`. The rest are internals: `connection.py` (the engine), `locks.py`
(locks between processes), `failures.py` (a database error as one line saying what to do),
`blobstore.py` and `blobs.py` (records kept as compressed parts), `writes.py` (versions written
in bulk), `baselines.py` (a trial's first version's "added" changes, derived when read),
`schema.py` (tables), `migrate.py` and `migrations/` (Alembic).
"""

from watcher.store.database import Store

__all__ = ["Store"]
