"""New studies found by a search: which are new, and the facts a "new trial" message names.

Pure: studies (the `/studies` page items a search asked for) in, plain values out.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from watcher.detect.nearby import sites

SEARCH_FIELDS = (
    "NCTId",
    "BriefTitle",
    "OverallStatus",
    "Phase",
    "LeadSponsorName",
    "Condition",
    "protocolSection.statusModule.studyFirstPostDateStruct",
    "protocolSection.contactsLocationsModule.locations",
)
"""What a search asks per study: enough for the message, and the sites with their geoPoints."""


def nct_of(study: Mapping[str, Any]) -> str | None:
    ident = (study.get("protocolSection") or {}).get("identificationModule") or {}
    nct = ident.get("nctId")
    return nct if isinstance(nct, str) else None


def new_matches(studies: Iterable[Mapping[str, Any]], known: Collection[str]) -> list[Mapping[str, Any]]:
    """The studies not matched before, each once, in the order found."""
    seen = set(known)
    out = []
    for study in studies:
        nct = nct_of(study)
        if nct and nct not in seen:
            seen.add(nct)
            out.append(study)
    return out


def summary(study: Mapping[str, Any]) -> dict[str, Any]:
    """NCT ID, title, phase, sponsor, status, conditions, site count and the first sites' places."""
    protocol = study.get("protocolSection") or {}
    status = protocol.get("statusModule") or {}
    phases = (protocol.get("designModule") or {}).get("phases") or []
    places = [s.place for s in sites(study).values() if s.place]
    return {
        "nct_id": nct_of(study),
        "title": (protocol.get("identificationModule") or {}).get("briefTitle"),
        "phase": "/".join(p.replace("PHASE", "Phase ").replace("EARLY_", "Early ") for p in phases) or "N/A",
        "sponsor": ((protocol.get("sponsorCollaboratorsModule") or {}).get("leadSponsor") or {}).get("name"),
        "status": status.get("overallStatus"),
        "first_posted": (status.get("studyFirstPostDateStruct") or {}).get("date"),
        "conditions": list((protocol.get("conditionsModule") or {}).get("conditions") or []),
        "sites": len(sites(study)),
        "places": list(dict.fromkeys(places))[:5],
    }


def sentence(search: str, facts: Mapping[str, Any]) -> str:
    """`New trial matching t1d-cell-therapy: NCT… — title, phase, sponsor, status, sites`."""
    where = f"{facts['sites']} site{'s' if facts['sites'] != 1 else ''}"
    if facts["places"]:
        where += " (" + "; ".join(facts["places"][:3]) + (", …" if facts["sites"] > 3 else "") + ")"
    return (
        f"New trial matching {search}: {facts['nct_id']} — {facts['title']}, {facts['phase']}, "
        f"{facts['sponsor'] or 'sponsor not given'}, {facts['status']}, {where}"
    )
