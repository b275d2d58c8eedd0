"""Live reload: noticing that the watchlist file changed, and what a reload takes from the new files."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from watcher.config import Config, load_config
from watcher.cycle.alerts import Alert, alert_messages, alert_text
from watcher.messages import NewMessage
from watcher.service.lastgood import guarded

_NOTHING = object()


class FileWatch:
    """Notices that a file changed and then held still for one more look (editors write in steps).

    stat() polling rather than inotify: it sees atomic-rename saves, edits through symlinks and
    network filesystems alike, and costs one syscall per `schedule.watch_interval`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen = self._signature()
        self._settling: object = _NOTHING

    def _signature(self) -> tuple[int, ...] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def changed(self) -> bool:
        current = self._signature()
        if current == self.seen:
            self._settling = _NOTHING
            return False
        if current != self._settling:
            self._settling = current
            return False
        self.seen, self._settling = current, _NOTHING
        return True

    def sync(self) -> None:
        self.seen, self._settling = self._signature(), _NOTHING


def reloaded_config(old: Config, config_path: Path | None, environ: Mapping[str, str]) -> tuple[Config, list[str]]:
    """The configuration to run with now, and which changes wait for a restart (to log).

    Raises ConfigError, with every problem, when the files are invalid or cannot be read at all (any
    exception: see `guarded`). The database and the API client stay as they were opened; the notify and
    watch timers keep their period.
    """
    new = guarded(lambda: load_config(config_path, environ), config_path)
    settings = new.settings
    later = []
    if settings.storage_url != old.settings.storage_url or settings.api != old.settings.api:
        later.append("storage.url and api.* apply after a restart")
        settings = replace(settings, storage_url=old.settings.storage_url, api=old.settings.api)
    if (
        settings.notify_interval != old.settings.notify_interval
        or settings.watch_interval != old.settings.watch_interval
    ):
        later.append("schedule.notify_interval and schedule.watch_interval apply after a restart")
    return replace(new, settings=settings), later


def rejection_alert(config: Config, problems: Sequence[str]) -> tuple[str, list[NewMessage]]:
    """What a rejected edit tells the user: an alert for every channel of the running `config`, or,
    with no channel configured, no messages and the text to print (returned in both cases)."""
    kept = len(config.watchlist.trials)
    subject = f"TrialWatch: configuration edit rejected, still watching the previous {kept} trials"
    watchlist = str(config.watchlist.path)
    if all(p.startswith(watchlist) for p in problems):
        advice = "Fix the watchlist: it is picked up as soon as it is saved."
    else:  # the settings file is read on reload only (SIGHUP, `systemctl reload trialwatch`)
        advice = (
            "Fix the file, then reload the service (`systemctl reload trialwatch` or SIGHUP): "
            "edits of the settings file are not picked up on save."
        )
    text = "\n".join(problems) + "\n\nThe service keeps running with the last good configuration. " + advice
    alert = Alert(subject, text)
    return alert_text(alert), alert_messages(config.settings, [alert])
