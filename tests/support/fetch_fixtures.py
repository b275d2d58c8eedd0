"""Download the real ClinicalTrials.gov data the tests read, for a clone without ../shared beside it.

    python -m tests.support.fetch_fixtures [--dest DIR] [--base-url URL] [--spec-url URL | --no-spec]

Fetches the 17 records of `shared.STUDY_IDS` from `<base-url>/studies/<NCT ID>` and the
OpenAPI spec (https://clinicaltrials.gov/api/oas/v2) into DIR, laid out like ../shared/fixtures/ctgov:
`studies/<NCT ID>.json` and `ctg-oas-v2.yaml`. DIR defaults to `$TRIALWATCH_FIXTURES` when set, else
`.fixtures-cache/ctgov` in the clone (git-ignored); `tests/support/shared.py` reads both.
Each file is written whole or not at all (a temporary file renamed into place). The fields_limited
captures and the version pairs are not something the API serves: they come only with ../shared.

Records fetched today are today's versions: tests that assert on a record's content were written
against the copies in ../shared and may disagree with newer ones.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from tests.support import shared

BASE_URL = "https://clinicaltrials.gov/api/v2"
SPEC_URL = "https://clinicaltrials.gov/api/oas/v2"
USER_AGENT = f"trialwatch-fixtures python-httpx/{httpx.__version__}"


class FetchError(Exception):
    """One download went wrong; the message says which and why."""


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def get(http: httpx.Client, url: str, **params: str) -> bytes:
    try:
        response = http.get(url, params=params)
    except httpx.HTTPError as exc:
        raise FetchError(f"GET {url}: {type(exc).__name__}: {exc or 'no answer'}") from exc
    if response.status_code != 200:
        raise FetchError(f"GET {response.url}: HTTP {response.status_code}: {response.text[:200].strip()}")
    return response.content


def fetch_study(http: httpx.Client, base_url: str, nct_id: str) -> bytes:
    body = get(http, f"{base_url}/studies/{nct_id}", format="json")
    try:
        got = json.loads(body)["protocolSection"]["identificationModule"]["nctId"]
    except (ValueError, KeyError, TypeError) as exc:
        raise FetchError(f"{nct_id}: the answer is not a study record ({type(exc).__name__}: {exc})") from exc
    if got != nct_id:
        raise FetchError(f"{nct_id}: the API answered with {got}")
    return body


def fetch_spec(http: httpx.Client, url: str) -> bytes:
    body = get(http, url)
    try:
        spec = YAML(typ="safe").load(body)
    except YAMLError as exc:
        raise FetchError(f"GET {url}: not YAML or JSON: {exc}") from exc
    if not isinstance(spec, dict) or "openapi" not in spec:
        raise FetchError(f"GET {url}: not an OpenAPI document")
    return body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.fetch_fixtures", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dest",
        type=Path,
        default=shared.fetch_destination(),
        help="directory to fill (default: %(default)s)",
    )
    parser.add_argument("--base-url", default=BASE_URL, help="API v2 base URL (default: %(default)s)")
    spec = parser.add_mutually_exclusive_group()
    spec.add_argument("--spec-url", default=SPEC_URL, help="OpenAPI document URL (default: %(default)s)")
    spec.add_argument("--no-spec", action="store_true", help="records only")
    parser.add_argument(
        "--delay",
        type=float,
        default=1.0,
        help="seconds between requests (default: %(default)s, the API's Crawl-delay)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default: %(default)s)")
    args = parser.parse_args(argv)
    base_url = args.base_url.rstrip("/")
    dest: Path = args.dest
    try:
        with httpx.Client(headers={"User-Agent": USER_AGENT}, timeout=args.timeout, follow_redirects=True) as http:
            for i, nct_id in enumerate(shared.STUDY_IDS):
                if i:
                    time.sleep(args.delay)
                write_atomically(dest / shared.STUDIES / f"{nct_id}.json", fetch_study(http, base_url, nct_id))
            if not args.no_spec:
                time.sleep(args.delay)
                write_atomically(dest / shared.SPEC, fetch_spec(http, args.spec_url))
    except (FetchError, OSError) as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 1
    what = f"{len(shared.STUDY_IDS)} records" + ("" if args.no_spec else " and the API spec")
    print(f"{parser.prog}: {what} written to {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
