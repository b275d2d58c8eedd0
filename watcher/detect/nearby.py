"""Nearby sites: which of a record's sites lie within a `near:` radius, and which are new there.

Pure: distances come from the `geoPoint` the registry puts on each site (it geocodes every
location), by the haversine formula on a sphere of the Earth's mean radius; the error against an
ellipsoid is under 0.5 %, far below what "within driving distance" needs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from watcher.models import Event, Near

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius
OPEN = ("RECRUITING", "NOT_YET_RECRUITING")
"""Site statuses that make a site worth announcing: it takes, or is about to take, patients."""


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True, slots=True)
class Site:
    key: str
    facility: str
    city: str
    state: str
    country: str
    status: str | None
    lat: float | None
    lon: float | None

    @property
    def place(self) -> str:
        return ", ".join(p for p in (self.city, self.state, self.country) if p)


def sites(record: Mapping[str, Any] | None) -> dict[str, Site]:
    """The record's sites by a key that survives edits of contacts and status: facility, city, country."""
    locations = (((record or {}).get("protocolSection") or {}).get("contactsLocationsModule") or {}).get("locations")
    out: dict[str, Site] = {}
    for loc in locations or []:
        if not isinstance(loc, Mapping):
            continue
        point = loc.get("geoPoint")
        geo: Mapping[str, Any] = point if isinstance(point, Mapping) else {}
        facility, city, country = (str(loc.get(k) or "") for k in ("facility", "city", "country"))
        key = f"{facility}|{city}|{country}".lower()
        lat, lon = geo.get("lat"), geo.get("lon")
        out.setdefault(
            key,
            Site(
                key=key,
                facility=facility,
                city=city,
                state=str(loc.get("state") or ""),
                country=country,
                status=loc.get("status"),
                lat=float(lat) if isinstance(lat, int | float) else None,
                lon=float(lon) if isinstance(lon, int | float) else None,
            ),
        )
    return out


def centre(near: Near, record: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """The point of `near`: its lat/lon, or the geoPoint of the first of the record's sites in the
    named place (city, state or country, case-insensitive); None when the record has no such site."""
    if near.lat is not None and near.lon is not None:
        return near.lat, near.lon
    wanted = (near.place or "").strip().lower()
    for site in sites(record).values():
        if (
            site.lat is not None
            and site.lon is not None
            and wanted in (site.city.lower(), site.state.lower(), site.country.lower())
        ):
            return site.lat, site.lon
    return None


def distance_km(site: Site, point: tuple[float, float]) -> float | None:
    if site.lat is None or site.lon is None:
        return None
    return haversine_km(point[0], point[1], site.lat, site.lon)


def within(
    record: Mapping[str, Any] | None,
    near: Near,
    *,
    point: tuple[float, float] | None = None,
    statuses: Iterable[str] | None = OPEN,
) -> list[tuple[float, Site]]:
    """(km, site) of the record's sites within the radius, nearest first; `statuses=None` keeps all."""
    point = point or centre(near, record)
    if point is None:
        return []
    allowed = set(statuses) if statuses is not None else None
    found = []
    for site in sites(record).values():
        km = distance_km(site, point)
        if km is not None and km <= near.km and (allowed is None or site.status in allowed):
            found.append((km, site))
    return sorted(found, key=lambda pair: (pair[0], pair[1].key))


def nearby_events(old: Mapping[str, Any] | None, new: Mapping[str, Any], near: Near) -> list[Event]:
    """A site within the radius that is new and open, or was there and is now open (it was not).

    The centre is resolved on the new record, so a place name follows the trial's own sites."""
    point = centre(near, new) or centre(near, old)
    if point is None:
        return []
    before = sites(old)
    events: list[Event] = []
    for km, site in within(new, near, point=point):
        previous = before.get(site.key)
        if previous is not None and previous.status in OPEN and previous.status == site.status:
            continue
        if previous is not None and previous.status in OPEN and site.status == "NOT_YET_RECRUITING":
            continue  # going back to "not yet" is not news to a coordinator
        newly = "New" if previous is None else "Newly"
        word = "recruiting" if site.status == "RECRUITING" else "not-yet-recruiting"
        summary = f"{newly} {word} site {km:.0f} km away: {site.facility}" + (f" ({site.place})" if site.place else "")
        events.append(
            Event(
                kind="nearby_site",
                summary=summary,
                data={
                    "facility": site.facility,
                    "city": site.city,
                    "state": site.state,
                    "country": site.country,
                    "status": site.status,
                    "km": round(km, 1),
                    "lat": site.lat,
                    "lon": site.lon,
                    "previous_status": previous.status if previous else None,
                    "radius_km": near.km,
                },
            )
        )
    return events
