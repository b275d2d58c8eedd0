"""Studies for the discovery tests and demo, derived in code from real records (never copied).

A "new" study is a real record (NCT06388018, one site) under a new NCT ID with its conditions,
intervention, status and site replaced, first posted in the fake's current refresh.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.support import shared
from tests.support.fakeapi import FakeCtGov

BOSTON = (42.36, -71.06)
BOSTON_CHILDRENS = {
    "facility": "Boston Children's Hospital",
    "status": "RECRUITING",
    "city": "Boston",
    "state": "Massachusetts",
    "zip": "02115",
    "country": "United States",
    "geoPoint": {"lat": 42.3376, "lon": -71.1050},
}
MGH = {
    "facility": "Massachusetts General Hospital",
    "status": "RECRUITING",
    "city": "Boston",
    "state": "Massachusetts",
    "zip": "02114",
    "country": "United States",
    "geoPoint": {"lat": 42.36253, "lon": -71.06929},
}
DENVER = {
    "facility": "Barbara Davis Center for Diabetes",
    "status": "RECRUITING",
    "city": "Aurora",
    "state": "Colorado",
    "zip": "80045",
    "country": "United States",
    "geoPoint": {"lat": 39.72943, "lon": -104.83192},
}

WATCHLIST = """\
trials:
  - id: NCT04728893
    label: Nemtabrutinib
    near: {lat: 42.36, lon: -71.06, km: 100}   # sites within 100 km of Boston
searches:
  - name: t1d-cell-therapy
    query: {cond: type 1 diabetes, intr: CAR-T}
    filter: {overallStatus: [RECRUITING, NOT_YET_RECRUITING]}
    watch: true
    channels: [team]
    min_severity: major
  - name: nsclc-boston
    query: {cond: non-small cell lung}
    filter: {overallStatus: RECRUITING}
    near: {lat: 42.36, lon: -71.06, km: 50}
    channels: [team]
"""


def new_study(
    fake: FakeCtGov,
    nct_id: str,
    *,
    title: str,
    conditions: list[str],
    intervention: str,
    site: dict[str, Any],
    status: str = "RECRUITING",
    phases: tuple[str, ...] = ("PHASE1",),
    sponsor: str = "Example University",
) -> dict[str, Any]:
    """A study first posted in the fake's current refresh (opened if the last one was published)."""
    study = copy.deepcopy(shared.load_study("NCT06388018"))
    protocol = study["protocolSection"]
    ident = protocol["identificationModule"]
    ident.update(nctId=nct_id, briefTitle=title, officialTitle=title)
    ident.pop("nctIdAliases", None)
    ident["orgStudyIdInfo"] = {"id": f"ORG-{nct_id[-4:]}"}
    protocol["conditionsModule"] = {"conditions": conditions}
    protocol["armsInterventionsModule"] = {
        "armGroups": [
            {"label": "Treatment", "type": "EXPERIMENTAL", "interventionNames": [f"Biological: {intervention}"]}
        ],
        "interventions": [{"type": "BIOLOGICAL", "name": intervention, "armGroupLabels": ["Treatment"]}],
    }
    protocol["designModule"]["phases"] = list(phases)
    protocol["sponsorCollaboratorsModule"] = {"leadSponsor": {"name": sponsor, "class": "OTHER"}}
    protocol["contactsLocationsModule"] = {"locations": [site]}
    day = fake.touch([])  # a refresh for the new postings (opens one if the last was published)
    status_module = protocol["statusModule"]
    status_module.update(
        overallStatus=status,
        studyFirstSubmitDate=day,
        studyFirstSubmitQcDate=day,
        studyFirstPostDateStruct={"date": day, "type": "ACTUAL"},
        lastUpdateSubmitDate=day,
        lastUpdatePostDateStruct={"date": day, "type": "ACTUAL"},
    )
    fake.put(study)
    return study


def post_three(fake: FakeCtGov) -> list[str]:
    """Three new studies, two matching the WATCHLIST's searches (one each)."""
    new_study(
        fake,
        "NCT07200001",
        title="Autologous CAR-T Regulatory Cells in New-onset Type 1 Diabetes",
        conditions=["Type 1 Diabetes"],
        intervention="CAR-T Treg cells",
        site=DENVER,
        phases=("PHASE1", "PHASE2"),
        sponsor="Sonoma Biotherapeutics",
    )
    new_study(
        fake,
        "NCT07200002",
        title="Closed-loop Insulin Delivery in Adolescents With Type 1 Diabetes",
        conditions=["Type 1 Diabetes"],
        intervention="Insulin pump",
        site=DENVER,
        phases=("NA",),
    )
    new_study(
        fake,
        "NCT07200003",
        title="Consolidation Osimertinib After Chemoradiation in Stage III NSCLC",
        conditions=["Non-small Cell Lung Cancer"],
        intervention="Osimertinib",
        site=MGH,
        phases=("PHASE2",),
        sponsor="Massachusetts General Hospital",
    )
    return ["NCT07200001", "NCT07200002", "NCT07200003"]


def add_boston_site(study: dict[str, Any]) -> None:
    study["protocolSection"]["contactsLocationsModule"]["locations"].append(dict(BOSTON_CHILDRENS))


def demo() -> None:
    """`python -m tests.support.discovery_studies`: the README's discovery examples, produced for real
    (fake API over HTTP, a webhook receiver, the CLI in-process): what the channel received."""
    import json
    import tempfile
    from pathlib import Path

    from click.testing import CliRunner

    from tests.support.fakeapi import load_fixtures
    from tests.support.peers import WebhookReceiver
    from watcher.cli.main import cli

    def run(settings: Path, *args: str) -> str:
        result = CliRunner().invoke(
            cli, ["--config", str(settings), "--log-level", "error", *args], catch_exceptions=False
        )
        return str(result.stdout)

    def show(receiver: WebhookReceiver, start: int) -> None:
        for request in receiver.requests[start:]:
            post = request.json()
            print(f"--- {post['kind']}\n{post['title']}\n{post['message']}\n")

    studies = [*load_fixtures(), shared.load_study("NCT05915728")]
    with FakeCtGov(studies) as fake, tempfile.TemporaryDirectory() as tmp:
        hook = WebhookReceiver().start()
        try:
            root = Path(tmp)
            settings = root / "trialwatch.yaml"
            settings.write_text(
                f"watchlist: watchlist.yaml\nstate_dir: state\napi:\n  base_url: {fake.base_url}\n"
                f"  requests_per_second: 0\nchannels:\n  team:\n    url: {hook.url()}\n"
                f"    no_edit: true\n"
            )
            watchlist = WATCHLIST.replace(
                "searches:\n", "  - NCT03418623      # real records, as they are\n  - NCT05915728\nsearches:\n"
            )
            (root / "watchlist.yaml").write_text(watchlist)
            print("== watchlist.yaml\n" + watchlist)
            run(settings, "check")
            print(
                f"== first check (searches' baseline; no-edit alerts on real records): {len(hook.requests)} messages\n"
            )
            show(hook, 0)
            seen = len(hook.requests)
            post_three(fake)
            fake.update("NCT04728893", add_boston_site)
            run(settings, "check")
            print(
                f"== after three new studies (two matching) and a new site in Boston: "
                f"{len(hook.requests) - seen} messages\n"
            )
            show(hook, seen)
            print("== trialwatch list\n" + run(settings, "list"))
            print(
                "== trialwatch search list --json\n"
                + json.dumps(json.loads(run(settings, "search", "list", "--json")), indent=1)
            )
        finally:
            hook.stop()


if __name__ == "__main__":
    demo()
