"""Where the third-party ClinicalTrials.gov data lives: the one module that knows.

Study records, the OpenAPI spec, field-limited captures and the version pairs are fetched data,
not ours, so none of it is committed. Each file is looked up in, first match wins:

1. `$TRIALWATCH_FIXTURES` when set, and then only there: pointing it at an empty directory
   shows what runs without the data;
2. `../shared/fixtures/ctgov` beside the clone (where CI puts it);
3. `.fixtures-cache/ctgov` in the clone (git-ignored), which `python -m tests.support.fetch_fixtures` fills.

Under pytest (`tests/conftest.py` calls `skip_when_missing()`) a missing file skips the test
asking for it, or its whole module when asked for at import time; elsewhere (benchmarks,
`python -m tests.support.fakeapi`) it raises `FixturesNotFound` with the same message.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

from ruamel.yaml import YAML

ENV = "TRIALWATCH_FIXTURES"
REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "fixtures" / "ctgov"
CACHE = REPO / ".fixtures-cache" / "ctgov"

# The records the tests were written against; the shared directory holds more. Counts in tests
# (17 studies, pages of 5, ...) depend on this exact list.
STUDY_IDS: tuple[str, ...] = (
    "NCT00763412",
    "NCT00973089",
    "NCT02513394",
    "NCT02856893",
    "NCT03064438",
    "NCT03318939",
    "NCT03418623",
    "NCT03630471",
    "NCT04207047",
    "NCT04267848",
    "NCT04280705",
    "NCT04431453",
    "NCT04728893",
    "NCT04764188",
    "NCT06171568",
    "NCT06610240",
    "NCT06863285",
)
SPEC = "ctg-oas-v2.yaml"
STUDIES = "studies"
FIELDS_LIMITED = "fields_limited"
PAIRS = "pairs"

_skip = False


class FixturesNotFound(FileNotFoundError):
    """A piece of third-party data is in none of the places searched."""


def skip_when_missing(enabled: bool = True) -> None:
    """From now on a missing file skips (pytest) instead of raising FixturesNotFound."""
    global _skip  # noqa: PLW0603 - one switch, flipped once by conftest
    _skip = enabled


def search_path() -> list[Path]:
    """The directories searched, in order."""
    override = os.environ.get(ENV)
    if override:
        return [Path(override).expanduser()]
    return [SHARED, CACHE]


def fetch_destination() -> Path:
    """Where `tests.support.fetch_fixtures` writes by default: a place `search_path()` reads."""
    override = os.environ.get(ENV)
    return Path(override).expanduser() if override else CACHE


def _missing(what: str) -> NoReturn:
    if os.environ.get(ENV):
        hint = f"not in ${ENV}={search_path()[0]}, the only place searched while it is set"
    else:
        hint = (
            f"expected {SHARED} (../shared/fixtures/ctgov beside the clone), "
            f"or run `python -m tests.support.fetch_fixtures` to fill {CACHE}"
        )
    message = f"real ClinicalTrials.gov data not found ({what}): {hint}"
    if _skip:
        import pytest

        pytest.skip(message, allow_module_level=True)
    raise FixturesNotFound(message)


def find(relative: str | Path) -> Path:
    """The first `<dir>/relative` that exists in the search path (file or directory)."""
    for root in search_path():
        candidate = root / relative
        if candidate.exists():
            return candidate
    _missing(str(relative))


def available(relative: str | Path) -> bool:
    """Whether `find(relative)` would succeed; never skips or raises."""
    return any((root / relative).exists() for root in search_path())


def study_path(nct_id: str) -> Path:
    return find(Path(STUDIES) / f"{nct_id}.json")


def study_paths(nct_ids: tuple[str, ...] = STUDY_IDS) -> list[Path]:
    """All of them or none: a check before handing the records to another process."""
    return [study_path(n) for n in nct_ids]


@cache
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def study_text(nct_id: str) -> str:
    """A record's JSON text as the API sent it (read once per file)."""
    return _read(study_path(nct_id))


def load_study(nct_id: str) -> dict[str, Any]:
    """A fresh parse of a real record: callers may edit it freely."""
    data: dict[str, Any] = json.loads(study_text(nct_id))
    return data


def load_studies(nct_ids: tuple[str, ...] = STUDY_IDS) -> list[dict[str, Any]]:
    """Fresh parses of the records, in the order given (sorted by NCT ID by default)."""
    return [load_study(n) for n in nct_ids]


def spec_path() -> Path:
    """The ClinicalTrials.gov API v2 OpenAPI document, saved verbatim."""
    return find(SPEC)


def load_spec() -> Any:
    return YAML(typ="safe").load(spec_path().read_text(encoding="utf-8"))


def fields_limited_path(name: str) -> Path:
    """A capture of a real `fields=`-limited response, e.g. `biomcp_get_NCT06382129_fields_20260811.json`."""
    return find(Path(FIELDS_LIMITED) / name)


def load_fields_limited(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(fields_limited_path(name).read_text(encoding="utf-8"))
    return data


def pairs_dir() -> Path:
    """Real successive versions: `pairs/<NCT>/*.json` plus `pairs/truth.json`."""
    return find(PAIRS)


SEEDS = REPO.parent / "shared" / "seeds"


def seed_text(number: str) -> str:
    """A product seed document (`000` is the model trial page, `001` an article) from ../shared/seeds.

    The seeds are the product's own brief, not something an API serves, so `fetch_fixtures` cannot
    fill them: without ../shared the tests that compare against them are skipped.
    """
    found = sorted(SEEDS.glob(f"{number}_*.txt")) if SEEDS.is_dir() else []
    if not found:
        message = f"product seed {number} not found: expected {SEEDS}/{number}_*.txt (../shared/seeds beside the clone)"
        if _skip:
            import pytest

            pytest.skip(message, allow_module_level=True)
        raise FixturesNotFound(message)
    return _read(found[0])
