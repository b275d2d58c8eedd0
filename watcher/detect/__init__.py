"""Detection, the pure core: record → named fields → field changes → what they mean.

`changes_between` is the one way in; the modules behind it are the field catalog (`catalog`),
record → named fields (`fields`, with identity keys and normal forms from `keys`), the matching of
list items between versions (`match`), the structural diff (`diff`), clinical meaning (`meaning`),
posted results in words (`results`) and notification filters (`filters`).
Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from watcher.detect.diff import diff_aligned
from watcher.detect.fields import extract_fields
from watcher.detect.match import align
from watcher.detect.meaning import SeverityRules, classify
from watcher.detect.results import COVERED, results_changes
from watcher.models import Change

__all__ = ["SeverityRules", "changes_between"]


def changes_between(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], rules: SeverityRules | None = None
) -> list[Change]:
    """Every field change from record `old` to record `new`, classified; `old=None` is a baseline."""
    rules = rules or SeverityRules()
    old_fields = extract_fields(old) if old is not None else None
    new_fields = align(old_fields, extract_fields(new))
    changes = classify(diff_aligned(old_fields, new_fields), old_fields, new_fields, rules)
    digests = {c.field for c in changes if c.field in COVERED}
    if old is None or not digests:
        return changes
    worded = [
        replace(c, severity=rules.override(c.field) or c.severity)
        for c in results_changes(old.get("resultsSection"), new.get("resultsSection"))
    ]
    return [c for c in changes if c.field not in digests] + worded
