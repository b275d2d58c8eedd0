"""What typed outbox payloads cost, and why msgspec (`watcher/messages.py`) over the alternatives.

A change set is encoded when the cycle queues it and decoded when the notifier claims it; the
outbox's JSON column runs `json.dumps` / `json.loads` on top either way. Measured here on real
change sets (the median and the largest of the real successive versions in the shared fixtures,
routed as `trialwatch` does with default settings), one write and one read each:

- json only: the dict payloads of before (the floor every option pays);
- msgspec: `encode_payload` / `decode_payload` as shipped (typed, checked on the way in);
- dataclasses: the same shape with hand-written conversion and checks;
- TypedDict: a cast (nothing converted, nothing checked);
- pydantic v2: the same shape as BaseModels behind a discriminated union (when installed).

Also the import time each library adds (in a fresh process, after what the notifier imports
anyway) and what each weighs installed. Timings are the best of several
interleaved rounds, in CPU time (the machines are shared); ratios are against the json-only floor
measured in the same run.

    python bench/bench_payloads.py
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict, cast

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.real_pairs import SETTINGS, pairs  # noqa: E402
from watcher.detect import changes_between  # noqa: E402
from watcher.detect.record import title_of  # noqa: E402
from watcher.messages import decode_payload, encode_payload  # noqa: E402
from watcher.models import Trial  # noqa: E402
from watcher.notify.payloads import changes_payload  # noqa: E402
from watcher.notify.routing import for_stdout  # noqa: E402

AT = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


# -- the alternatives, each the changes kind of the same shape -------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Event:
    kind: str
    summary: str
    data: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class _Change:
    field: str
    change: str
    old: Any
    new: Any
    severity: str
    event: _Event | None


_SCALARS = ("nct_id", "label", "title", "url", "history_url", "version", "detected_at")


@dataclasses.dataclass(frozen=True, slots=True)
class _Changes:
    nct_id: str
    label: str | None
    title: str | None
    url: str | None
    history_url: str | None
    version: int
    detected_at: str
    changes: tuple[_Change, ...]


def _event_to_dict(event: _Event | None) -> dict[str, Any] | None:
    return None if event is None else {"kind": event.kind, "summary": event.summary, "data": event.data}


def _dataclass_to_dict(payload: _Changes) -> dict[str, Any]:
    changes = [
        {
            "field": c.field,
            "change": c.change,
            "old": c.old,
            "new": c.new,
            "severity": c.severity,
            "event": _event_to_dict(c.event),
        }
        for c in payload.changes
    ]
    return {"type": "changes", "schema": 1, **{f: getattr(payload, f) for f in _SCALARS}, "changes": changes}


def _event_from(raw: Any) -> _Event | None:
    if raw is None:
        return None
    if not (isinstance(raw, dict) and isinstance(raw.get("kind"), str) and isinstance(raw.get("summary"), str)):
        raise TypeError("event")
    return _Event(raw["kind"], raw["summary"], dict(raw.get("data") or {}))


def _change_from(raw: Any) -> _Change:
    if not isinstance(raw.get("field"), str) or raw.get("change") not in ("added", "removed", "changed"):
        raise TypeError("change")
    severity = raw.get("severity") or "minor"
    return _Change(raw["field"], raw["change"], raw.get("old"), raw.get("new"), severity, _event_from(raw.get("event")))


def _dataclass_from(raw: dict[str, Any]) -> _Changes:
    if not isinstance(raw.get("nct_id"), str) or not isinstance(raw.get("version"), int):
        raise TypeError("nct_id/version")
    if not isinstance(raw.get("changes"), list):
        raise TypeError("changes")
    scalars = {f: raw.get(f) for f in _SCALARS}
    return _Changes(**scalars, changes=tuple(_change_from(c) for c in raw["changes"]))


class _TypedChanges(TypedDict):
    type: Literal["changes"]
    nct_id: str
    version: int
    changes: list[dict[str, Any]]


def _pydantic() -> tuple[Callable[[Any], Any], Callable[[Any], Any]] | None:
    try:
        from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
    except ImportError:
        return None

    class Event(BaseModel):
        model_config = ConfigDict(frozen=True)
        kind: str
        summary: str
        data: dict[str, Any] = {}

    class Change(BaseModel):
        model_config = ConfigDict(frozen=True)
        field: str
        change: Literal["added", "removed", "changed"]
        old: Any = None
        new: Any = None
        severity: Literal["minor", "major", "critical"] = "minor"
        event: Event | None = None

    class Changes(BaseModel):
        model_config = ConfigDict(frozen=True, populate_by_name=True)
        type: Literal["changes"] = "changes"
        schema_: int = Field(1, alias="schema")
        nct_id: str
        label: str | None
        title: str | None
        url: str | None = None
        history_url: str | None = None
        version: int
        detected_at: str
        changes: tuple[Change, ...]

    class Alert(BaseModel):
        type: Literal["alert"] = "alert"
        subject: str
        text: str

    adapter: Any = TypeAdapter(Annotated[Changes | Alert, Field(discriminator="type")])
    return adapter.validate_python, partial(adapter.dump_python, by_alias=True)


# -- measuring -------------------------------------------------------------------------------------


def _change_sets() -> list[dict[str, Any]]:
    found = []
    for pair in pairs():
        trial = Trial(pair.nct_id, label="a label")
        changes = for_stdout(trial, changes_between(pair.old, pair.new), SETTINGS)
        if changes:
            payload = changes_payload(trial, title_of(pair.new), changes, version=2, detected_at=AT)
            found.append(encode_payload(payload))
    return sorted(found, key=lambda raw: len(json.dumps(raw)))


def _best(runs: dict[str, Callable[[], Any]], count: int, rounds: int = 7) -> dict[str, float]:
    """Best µs of CPU time per call of each function (the CPU this process used: other processes on
    a shared machine do not count), the rounds interleaved so that what noise is left hits all alike."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            run()
            started = time.process_time()
            for _ in range(count):
                run()
            best[name] = min(best[name], (time.process_time() - started) / count * 1e6)
    return best


def _round_trips(raw: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """One read (JSON text → model, as a claim reads the column) and one write (model → JSON text)."""
    text = json.dumps(raw)
    options: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
        "json only (dict payloads, before)": (lambda d: d, lambda d: d),
        "msgspec (watcher.messages, shipped)": (decode_payload, encode_payload),
        "dataclasses (hand-written checks)": (_dataclass_from, _dataclass_to_dict),
        "TypedDict (a cast, no check)": (partial(cast, _TypedChanges), lambda d: d),
    }
    pydantic = _pydantic()
    if pydantic is not None:
        options["pydantic v2 (discriminated union)"] = pydantic

    def trip(load: Callable[[Any], Any], dump: Callable[[Any], Any]) -> Callable[[], Any]:
        return lambda: load(json.loads(json.dumps(dump(load(json.loads(text))))))

    return {name: trip(load, dump) for name, (load, dump) in options.items()}


def _import_ms(module: str, repeat: int) -> float | None:
    """Median ms `import module` adds in a fresh process that has already imported what the notifier
    imports besides it (the store's SQLAlchemy, structlog, httpx, jinja2, the config's YAML)."""
    code = (
        "import time, importlib, sqlalchemy.orm, structlog, httpx, jinja2, ruamel.yaml\n"
        f"t = time.perf_counter(); importlib.import_module({module!r})\n"
        "print((time.perf_counter() - t) * 1000)"
    )
    if module == "pydantic":  # pydantic imports lazily: count what defining a model costs
        code = code.replace(
            f"importlib.import_module({module!r})",
            "from pydantic import BaseModel, TypeAdapter\nclass M(BaseModel):\n    x: int\nTypeAdapter(M)",
        )
    found = []
    for _ in range(repeat):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return None
        found.append(float(done.stdout))
    return statistics.median(found)


def _installed_kb(*names: str) -> int | None:
    total = 0
    for name in names:
        try:
            files = importlib.metadata.files(name) or []
        except importlib.metadata.PackageNotFoundError:
            return None
        total += sum(f.size or 0 for f in files if f.size)
    return total // 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="one short round of each (checks the script runs)")
    args = parser.parse_args(argv)
    rounds, imports = (1, 1) if args.quick else (7, 15)
    change_sets = _change_sets()
    median, largest = change_sets[len(change_sets) // 2], change_sets[-1]
    for label, raw, count in (("median", median, 1000), ("largest", largest, 12)):
        size = len(json.dumps(raw))
        best = _best(_round_trips(raw), 1 if args.quick else count, rounds)
        floor = best["json only (dict payloads, before)"]
        print(f"{label} real change set ({raw['nct_id']}: {len(raw['changes'])} changes, {size:,} bytes of JSON)")
        print("  one write + one read through the JSON column     µs     ratio     + µs")
        for name, us in best.items():
            print(f"  {name:46s} {us:8.1f}   {us / floor:6.2f}x   {us - floor:+8.1f}")
    print(f"\nimport time added after the notifier's other imports (median of {imports} fresh processes)")
    for module in ("msgspec", "pydantic"):
        ms = _import_ms(module, imports)
        print(f"  {module:10s} {'not installed' if ms is None else f'{ms:.1f} ms'}")
    print("\ninstalled size")
    for label, names in (
        ("msgspec", ("msgspec",)),
        ("pydantic", ("pydantic", "pydantic-core", "annotated-types", "typing-inspection")),
    ):
        kb = _installed_kb(*names)
        print(f"  {label:10s} {'not installed' if kb is None else f'{kb:,} KB in {len(names)} package(s)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
