"""The commented settings file and watchlist `trialwatch init` writes for a first run.

Pure text: the command decides where they go and checks them with the same loader as every other
command, so a starter that does not validate can never be written (tests/cli/test_init.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

SETTINGS_NAME, WATCHLIST_NAME = "trialwatch.yaml", "watchlist.yaml"
DEFAULT_API = "https://clinicaltrials.gov/api/v2"

# Two real, recruiting trials, so a first `check` has something to record.
EXAMPLE_TRIALS = (("NCT06747156", "ABO2203 autoimmune"), ("NCT07198867", ""))


@dataclass(frozen=True, slots=True)
class Starter:
    """What the first run watches and where it reports: the answers to `init`'s questions."""

    trials: Sequence[tuple[str, str]] = EXAMPLE_TRIALS
    channel_url: str = ""
    api_url: str = DEFAULT_API


def _quoted(text: str) -> str:
    """A YAML scalar that reads back as `text`, whatever it holds (JSON strings are YAML)."""
    return json.dumps(text, ensure_ascii=False)


def settings_text(starter: Starter) -> str:
    """The settings file: the few keys a first run needs, each commented, the rest pointed at."""
    channel = (
        f"channels:\n  first:\n    url: {_quoted(starter.channel_url)}\n    # min_severity: major\n"
        if starter.channel_url
        else "# channels:\n#   first:\n#     url: json://127.0.0.1:8085/hook   # or slack://…, mailtos://…, tgram://…\n"
    )
    return f"""\
# TrialWatch settings, written by `trialwatch init`. Every key is optional; the reference lists them
# all with their defaults (docs/reference/settings.md). Check this file with `trialwatch check-config`.

# The watchlist, relative to this file.
watchlist: {WATCHLIST_NAME}

# Where the SQLite database and the service's state live, relative to this file. Under systemd or in
# the container, remove this line: the state directory is then $STATE_DIRECTORY (or the volume).
state_dir: state

api:
  base_url: {_quoted(starter.api_url)}
  # requests_per_second: 0.8   # ClinicalTrials.gov asks for gentle clients; 0 = unlimited (a local mirror)

schedule:
  interval: 6h                 # how often `trialwatch run` polls; the registry refreshes once a day

# Where changes go: any apprise URL (https://appriseit.com). With no channel, changes print to stdout.
# Keep secrets out of this file: url: ${{SLACK_URL}} reads the environment variable SLACK_URL.
{channel}
notify:
  baseline: false              # a trial's first version is recorded, not notified
  # min_severity: major        # minor | major | critical
"""


def watchlist_text(starter: Starter) -> str:
    """The watchlist: the chosen trials, each with its label when it has one."""
    lines = [
        "# The trials TrialWatch watches: a bare NCT ID, or a mapping with id and optional label, tags,",
        "# channels, only/ignore (field globs), min_severity. Add more with `trialwatch add NCT…`, or",
        "# watch a search for new trials with `trialwatch search add`. The service picks edits up by itself.",
        "trials:",
    ]
    for nct_id, label in starter.trials:
        lines += [f"  - id: {nct_id}", f"    label: {_quoted(label)}"] if label else [f"  - {nct_id}"]
    return "\n".join(lines) + "\n"
