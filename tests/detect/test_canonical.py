"""Canonical JSON by orjson (`watcher.detect.canonical`) writes the very bytes the standard library
wrote, so the `content_hash` and blob digests of databases made before it stay valid: an upgraded
database sees no trial as changed and stores no part twice."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from tests.support import shared
from tests.support.fakeapi import FakeCtGov
from tests.support.workspace import Workspace
from watcher.detect.canonical import canonical_bytes, encode_record
from watcher.detect.record import content_hash
from watcher.errors import InvalidResponse
from watcher.registry.pages import PageReader
from watcher.registry.responses import parse_json
from watcher.store import Store, blobs
from watcher.store.blobstore import load_record
from watcher.store.schema import SnapshotRow


def standard(value: Any) -> bytes:
    """What the store wrote before orjson: the reference."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def standard_hash(record: Mapping[str, Any]) -> str:
    derived = record.get("derivedSection")
    misc = derived.get("miscInfoModule") if isinstance(derived, Mapping) else None
    if isinstance(misc, Mapping) and "versionHolder" in misc:
        trimmed = {k: v for k, v in misc.items() if k != "versionHolder"}
        record = {**record, "derivedSection": {**derived, "miscInfoModule": trimmed}}  # type: ignore[dict-item]
    return hashlib.sha256(standard(record)).hexdigest()


def standard_manifest(record: Mapping[str, Any]) -> str:
    entries = []
    for key, value in record.items():
        if key == "protocolSection" and isinstance(value, Mapping) and value:
            entries += [[[key, sub], hashlib.sha256(standard(inner)).hexdigest()] for sub, inner in value.items()]
        else:
            entries.append([[key], hashlib.sha256(standard(value)).hexdigest()])
    entries.sort(key=lambda e: e[0])
    return hashlib.sha256(standard({"schema": 1, "parts": entries})).hexdigest()


def real_records() -> list[dict[str, Any]]:
    records = shared.load_studies()
    records += [json.loads(p.read_text()) for p in sorted(shared.pairs_dir().glob("*/*.json"))]
    return records


def test_real_records_hash_and_split_as_the_standard_library_did() -> None:
    records = real_records()
    assert len(records) > 17
    floats = 0
    for record in records:
        encoded = encode_record(record)
        assert encoded.digest == standard_hash(record) == content_hash(record)
        assert all(raw == standard(_at(record, path)) for path, raw in encoded.parts)
        manifest, _ = blobs.record_parts(record, encoded)
        assert manifest.digest == standard_manifest(record)
        floats += standard(record).count(b'"lat":')
    assert floats, "the real records hold floats (geoPoint), the case orjson writes its own way"


def _at(record: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = record
    for key in path:
        node = node[key]
    return node


@pytest.mark.parametrize(
    "number",
    [
        1e-05,
        0.00001234,
        1.5e-07,
        5e-324,
        1e16,
        1.2345678901234568e17,
        1e22,
        1.7976931348623157e308,
        0.0001,
        1e15,
        -0.0,
        42.36008,
        2**63,
        -(2**63) - 1,
        2**64,
        10**30,
    ],
)
def test_numbers_orjson_writes_otherwise_are_written_as_before(number: float) -> None:
    value = {"geoPoint": {"lat": number, "lon": -71.05977}, "n": [number]}
    assert canonical_bytes(value) == standard(value)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(blacklist_categories=("Cs",))),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_any_json_value_is_written_as_the_standard_library_writes_it(value: Any) -> None:
    assert canonical_bytes(value) == standard(value)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["protocolSection", "derivedSection", "resultsSection", "hasResults"]),
        json_values | st.dictionaries(st.text(max_size=5), json_values, max_size=3),
        max_size=4,
    )
)
def test_any_record_hashes_as_before(record: dict[str, Any]) -> None:
    assert content_hash(record) == standard_hash(record)
    assert blobs.record_parts(record)[0].digest == standard_manifest(record)


def test_nan_is_refused_where_records_are_read() -> None:
    """orjson would write NaN as null; JSON has no NaN, so the registry's answers never bring one."""
    import io

    with pytest.raises(InvalidResponse, match="NaN is not a JSON number"):
        list(PageReader(io.BytesIO(b'{"studies": [{"a": 1}, {"lat": NaN}]}'), "/studies").studies())
    with pytest.raises(InvalidResponse, match="Infinity"):
        parse_json(b'{"lat": -Infinity}', "/studies/NCT04728893")


def test_a_database_hashed_by_the_standard_library_sees_no_change(workspace: Workspace, fake_api: FakeCtGov) -> None:
    """Versions whose `content_hash` the previous release computed (json.dumps), including a float
    written with an exponent and non-ASCII text, are recognised unchanged by a full re-fetch."""
    trials = ["NCT04728893", "NCT03064438", "NCT06610240"]

    def tricky(study: dict[str, Any]) -> None:
        study["protocolSection"]["identificationModule"]["briefTitle"] += " — étude ü 😀 \x1f"
        study["protocolSection"].setdefault("contactsLocationsModule", {}).setdefault("locations", []).append(
            {"facility": "Null Island", "geoPoint": {"lat": 1e-05, "lon": 1.5e-07}}
        )

    fake_api.update(trials[0], tricky)
    workspace.write(trials=trials)
    assert workspace.cli("check").code == 0
    with Store(workspace.db_url) as store:
        with store.session() as s:
            rows = list(s.scalars(select(SnapshotRow)))
            assert len(rows) == 3
            for row in rows:
                record = load_record(s, row.manifest)
                s.execute(
                    update(SnapshotRow)
                    .where(SnapshotRow.id == row.id)
                    .values(content_hash=standard_hash(copy.deepcopy(record)))
                )
        before = {n: [v.content_hash for v in store.versions.infos(n)] for n in trials}
        fake_api.new_refresh()
        result = workspace.cli("check", "--full")
        assert result.code == 0
        after = {n: [v.content_hash for v in store.versions.infos(n)] for n in trials}
    assert after == before, "no new version: every record was recognised by its old hash"
