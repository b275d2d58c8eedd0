"""Old fields, new fields → the list of changes, each named so a person knows what moved.

Fields come from `watcher.detect.fields.extract_fields`, so lists are already keyed by identity
and order-insensitive; this stage only walks two plain mappings. A whole field that
appears or disappears is one change; inside a mapping (a keyed list, a location, a small
object) the change names the item and sub-field, e.g. `locations.<key>.status`.
Eligibility criteria are compared per criterion line.

Values are compared with `==` as extracted: equal parts of megabyte records are skipped
at C speed, which keeps the whole diff cheaper than parsing the record. Only values that
differ are normalized (nested lists keyed or sorted) and compared again, so reordering a
list anywhere is never a change; every reported value is in normalized form.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping

from watcher.detect.catalog import field_kind, field_rank
from watcher.detect.keys import fingerprint, normalize
from watcher.detect.match import align
from watcher.models import Change, Json


def diff_fields(old: Mapping[str, Json] | None, new: Mapping[str, Json]) -> list[Change]:
    """The changes from `old` to `new`, in catalog order; `old=None` is a baseline.

    The items of keyed lists are first matched to the old ones (`watcher.detect.match.align`),
    so an item keeps its old name and an edit in place is a change, not removed + added.
    """
    return diff_aligned(old, align(old, new))


def diff_aligned(old: Mapping[str, Json] | None, new: Mapping[str, Json]) -> list[Change]:
    """`diff_fields` of fields already aligned: a change is named as the field is.

    A baseline reports every field of `new` as added. Results modules are reported by
    their digest, never by their (possibly megabyte) content.
    """
    if old is None:
        return [Change(name, "added", None, _shown(name, new[name])) for name in sorted(new, key=field_rank)]
    per_field: list[tuple[tuple[int, str], list[Change]]] = []
    for name, after in new.items():
        if name not in old:
            per_field.append((field_rank(name), [Change(name, "added", None, _shown(name, after))]))
            continue
        before = old[name]
        if before is after or before == after:
            continue
        if field_kind(name) == "digest":
            per_field.append((field_rank(name), list(_diff_value(name, before, after))))
            continue
        old_form, new_form = normalize(before), normalize(after)
        if old_form != new_form:
            per_field.append((field_rank(name), list(_diff_value(name, old_form, new_form))))
    for name, value in old.items():
        if name not in new:
            per_field.append((field_rank(name), [Change(name, "removed", _shown(name, value), None)]))
    per_field.sort(key=lambda item: item[0])
    return [change for _, changes in per_field for change in changes]


def _shown(name: str, value: Json) -> Json:
    return fingerprint(value) if field_kind(name) == "digest" else normalize(value)


def _diff_value(name: str, old: Json, new: Json) -> Iterator[Change]:
    kind = field_kind(name)
    if kind == "digest":
        yield Change(name, "changed", fingerprint(old), fingerprint(new))
    elif kind == "criteria" and isinstance(old, str) and isinstance(new, str):
        yield from diff_criteria(name, old, new)
    else:
        yield from _diff_nested(name, old, new)


def _diff_nested(name: str, old: Json, new: Json) -> Iterator[Change]:
    if not (isinstance(old, dict) and isinstance(new, dict)):
        yield Change(name, "changed", old, new)
        return
    for key in sorted(old.keys() | new.keys()):
        sub = f"{name}.{key}"
        if key not in old:
            yield Change(sub, "added", None, new[key])
        elif key not in new:
            yield Change(sub, "removed", old[key], None)
        elif old[key] != new[key]:
            yield from _diff_nested(sub, old[key], new[key])


# ---------------------------------------------------------------------------------------
# Eligibility criteria, per line
# ---------------------------------------------------------------------------------------

_HEADER = re.compile(r"^(?:key\s+)?(inclusion|exclusion)(?:\s+criteria)?\s*:?$", re.IGNORECASE)
_MARKER = re.compile(r"^(?:[-*+•·]|\d{1,3}[.)]|[a-zA-Z][.)]|\(\w{1,4}\))\s+")
_EMPHASIS = re.compile(r"^[*_]{1,3}(.*?)[*_]{1,3}$")


def criteria_sections(text: str) -> dict[str, list[str]]:
    """Criterion lines by section (`general` before any header, `inclusion`, `exclusion`).

    Lines lose their list markers (`*`, `1.`, `a)`) and surrounding space, so renumbering
    a list or re-indenting it is not a change of any criterion.
    """
    sections: dict[str, list[str]] = {}
    current = "general"
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        for _ in range(3):
            stripped = _MARKER.sub("", line, count=1).strip()
            if stripped == line:
                break
            line = stripped
        bare = _EMPHASIS.sub(r"\1", line).strip()
        header = _HEADER.match(bare)
        if header:
            current = header.group(1).lower()
            sections.setdefault(current, [])
            continue
        if line:
            sections.setdefault(current, []).append(line)
    return sections


def diff_criteria(name: str, old: str, new: str) -> Iterator[Change]:
    """Criterion lines added, removed or reworded, named `<name>.<section>.<n>`.

    `n` counts from 1 within the section, in the new text for added and reworded lines
    and in the old text for removed ones. A replaced run of lines is paired up line by
    line as rewordings; what is left over is added or removed. If the texts differ only in
    layout (markers, blank lines, headers), one change of the whole field says so.
    """
    before, after = criteria_sections(old), criteria_sections(new)
    order = list(after) + [s for s in before if s not in after]
    found = False
    for section in order:
        a, b = before.get(section, []), after.get(section, [])
        if a == b:
            continue
        base = f"{name}.{section}"
        matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                continue
            found = True
            paired = min(i2 - i1, j2 - j1) if tag == "replace" else 0
            for k in range(paired):
                yield Change(f"{base}.{j1 + k + 1}", "changed", a[i1 + k], b[j1 + k])
            for i in range(i1 + paired, i2):
                yield Change(f"{base}.{i + 1}", "removed", a[i], None)
            for j in range(j1 + paired, j2):
                yield Change(f"{base}.{j + 1}", "added", None, b[j])
    if not found:
        yield Change(name, "changed", old, new)
