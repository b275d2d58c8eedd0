"""Discovery: saved searches for new trials, nearby sites, and alerts that need no edit.

The cycle calls three things here, each a few lines in `watcher/cycle/`:
- `searches.discover` before polling: runs the saved searches (on complete cycles), announces
  new matches once, and hands back the `watch: true` matches to poll with the listed trials;
- `sites.site_messages` for each new version of a trial with `near:`: new or newly recruiting
  sites within the radius, each its own message;
- `daily.announce_no_edit_alerts` after a complete cycle, at most once a UTC day: the no-edit conditions
  on each watched trial's latest stored version.
The pure parts are in `watcher.detect` (`newstudies`, `nearby`, `noedit`), the queries in
`watcher.registry.search`, the payloads in `watcher.notify.discovery`, the memory in
`watcher.store.discovery`.
"""

from watcher.discovery.daily import announce_no_edit_alerts
from watcher.discovery.searches import Discovered, discover, preview
from watcher.discovery.sites import site_messages

__all__ = ["Discovered", "announce_no_edit_alerts", "discover", "preview", "site_messages"]
