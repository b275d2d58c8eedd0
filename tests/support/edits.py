"""What a sponsor does to a trial in the fake API: the edit the end-to-end and crash tests make."""

from __future__ import annotations

from typing import Any

CHANGED, QUIET_1, QUIET_2 = "NCT04728893", "NCT03418623", "NCT06171568"


NEW_SITE = {
    "facility": "Ruijin Hospital",
    "status": "RECRUITING",
    "city": "Shanghai",
    "country": "China",
    "geoPoint": {"lat": 31.22222, "lon": 121.45806},
}


SITE_FIELD = "locations.ruijin hospital|shanghai||china"


def edit_trial(study: dict[str, Any]) -> None:
    """What a sponsor does: suspend the trial, raise enrollment, add a site (the fake bumps the date)."""
    ps = study["protocolSection"]
    ps["statusModule"]["overallStatus"] = "SUSPENDED"
    ps["statusModule"]["whyStopped"] = "Sponsor decision"
    ps["designModule"]["enrollmentInfo"]["count"] = 520
    ps["contactsLocationsModule"]["locations"].append(NEW_SITE)
