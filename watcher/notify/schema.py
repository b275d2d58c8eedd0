"""Print the webhook document's JSON Schema, generated from its typed definition (`formats.webhook`).

    python -m watcher.notify.schema > docs/reference/webhook.schema.json

The published file is kept equal to this output by a test, so receivers can validate what they
get against the schema of the release they run.
"""

from __future__ import annotations

import json
import sys

from watcher.notify.formats import json_schema


def main() -> None:
    sys.stdout.write(json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
