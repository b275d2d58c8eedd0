"""The diff case table (`diff_cases.yaml`): real records, a named edit each, the changes expected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.support.studies import edit, load
from watcher.detect.diff import diff_fields
from watcher.detect.fields import extract_fields
from watcher.models import Change

CASES: list[dict[str, Any]] = YAML(typ="safe").load(Path(__file__).with_name("diff_cases.yaml"))


def case_changes(case: dict[str, Any]) -> tuple[list[Change], dict[str, Any], dict[str, Any]]:
    record = load(case["study"])
    old, new = extract_fields(record), extract_fields(edit(record, case["edits"]))
    return diff_fields(old, new), old, new
