"""Snapshot records as content-addressed, compressed parts: pure functions, no database.

A study record is split into parts (each protocol module, the results, derived and document
sections, the rest), and each part is stored once under the SHA-256 of its canonical JSON,
compressed with zstd. A version is a small *manifest* — itself a part — naming its parts.
An edit of one module stores one new module and one new manifest; an A→B→A edit stores
nothing new for the second A at all, because its manifest already exists.
"""

from __future__ import annotations

import hashlib
import json
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import zstandard

from watcher.detect.canonical import Encoded, canonical_bytes, encode_record

CODEC = "zstd"
# measured on the 17 fixture records' parts: level 3 takes 0.65 ms per record and leaves 13.97% of the
# raw bytes, level 12 5.5 ms for 12.59%; a first sync of thousands of records wants the speed
_LEVEL = 3
MANIFEST_SCHEMA = 1


@dataclass(frozen=True, slots=True)
class Blob:
    digest: str
    codec: str
    size: int  # bytes of canonical JSON before compression
    data: bytes


REF_CHARS = 16  # `blob_refs` keys: a digest's first 64 bits (a clash only keeps a blob longer, never loses one)


def ref_key(digest: str) -> str:
    return digest[:REF_CHARS]


def digest_of(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


_local = threading.local()


def compress(raw: bytes) -> bytes:
    """zstd, with one compressor per thread (making one per part cost more than compressing small parts)."""
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(level=_LEVEL)
    return compressor.compress(raw)


def decompress(codec: str, data: bytes) -> bytes:
    """A part's canonical JSON back, with one zstd decompressor per thread (making one per part took
    three times as long as decompressing it: a record is ~16 parts, a site build reads thousands)."""
    if codec == "zstd":
        decompressor = getattr(_local, "decompressor", None)
        if decompressor is None:
            decompressor = _local.decompressor = zstandard.ZstdDecompressor()
        return decompressor.decompress(data)
    if codec == "zlib":
        return zlib.decompress(data)
    if codec == "raw":
        return data
    raise ValueError(f"unknown blob codec {codec!r}")


@dataclass(frozen=True, slots=True)
class Part:
    """A part's digest and canonical JSON, compressed (`blob()`) only if the store lacks it."""

    digest: str
    raw: bytes

    def blob(self) -> Blob:
        return Blob(self.digest, CODEC, len(self.raw), compress(self.raw))


def record_parts(record: Mapping[str, Any], encoded: Encoded | None = None) -> tuple[Part, list[Part]]:
    """(manifest, parts) of one record, uncompressed; equal records give equal manifests.

    `encoded`: the record's canonical parts when the caller has them already (the cycle encodes
    each record once, for its content hash and for these)."""
    encoded = encoded or encode_record(record)
    parts = [Part(digest_of(raw), raw) for _, raw in encoded.parts]
    entries: list[list[Any]] = sorted(
        ([list(path), part.digest] for (path, _), part in zip(encoded.parts, parts, strict=True)),
        key=lambda e: list(e[0]),
    )
    raw = canonical_bytes({"schema": MANIFEST_SCHEMA, "parts": entries})
    return Part(digest_of(raw), raw), parts


def split_record(record: Mapping[str, Any]) -> tuple[Blob, list[Blob]]:
    """(manifest blob, part blobs) for one record, compressed; equal records give equal manifests."""
    manifest, parts = record_parts(record)
    return manifest.blob(), [p.blob() for p in parts]


def manifest_digests(manifest: Mapping[str, Any]) -> list[str]:
    return [str(entry[1]) for entry in manifest.get("parts", [])]


def join_record(manifest: Mapping[str, Any], parts: Mapping[str, Any]) -> dict[str, Any]:
    """The record back from its manifest and its decoded parts (digest → value)."""
    if manifest.get("schema") != MANIFEST_SCHEMA:
        raise ValueError(f"unknown manifest schema {manifest.get('schema')!r}")
    record: dict[str, Any] = {}
    for path, digest in manifest["parts"]:
        target = record
        for key in path[:-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = parts[digest]
    return record


def load(codec: str, data: bytes) -> Any:
    raw = decompress(codec, data)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:  # what orjson refuses and json reads (NaN, integers beyond 64 bits)
        return json.loads(raw)
