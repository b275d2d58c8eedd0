"""Sites are named as the record spells them, on the real pairs: a contact, an address or a map
position that changes names its site by facility, city, state and country as written in the record
(never the lowercased key), and a facility only re-encoded by the registry is one edited site.

Expected values are read off the two records by hand (see each test), not from what the code renders.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support import real_pairs
from watcher.detect import changes_between
from watcher.detect.record import title_of
from watcher.models import Trial
from watcher.notify.formats import FORMATS, Context, Delivery, SummaryEntry, context
from watcher.notify.payloads import changes_payload

AT = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)

GEO = "NCT06825494:2025-12-18_2026-03-12->2025-12-18_2026-03-13"
READDRESSED = "NCT05581004:2026-01-20_2026-02-13->2026-02-17_2026-02-17"
REENCODED = "NCT06203210:2026-02-09_2026-02-13->2026-03-02_2026-03-09"
UNENCODED = "NCT06203210:2026-01-20_2026-02-04->2026-02-09_2026-02-09"


def _pair(pair_id: str) -> real_pairs.Pair:
    return next(p for p in real_pairs.pairs() if p.id == pair_id)


def _context(pair: real_pairs.Pair) -> Context:
    outcome = real_pairs.run(pair)
    payload = changes_payload(Trial(pair.nct_id), title_of(pair.new), outcome.notified, version=2, detected_at=AT)
    return context(payload, Delivery(channel="email", message_id=None, created_at=AT, now=AT))


def _read(ctx: Context) -> str:
    """Subject and body of every human format, HTML read as text."""
    out = [ctx.title, ctx.body_text]
    for kind in ("email", "slack", "telegram", "text"):
        rendered = FORMATS[kind](ctx)
        out += [rendered.title, *(html.unescape(p) for p in rendered.parts), rendered.plain or ""]
    return "\n".join(out)


def _sites(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    module = record.get("protocolSection", {}).get("contactsLocationsModule", {})
    return list(module.get("locations") or [])


def _place(site: Mapping[str, Any]) -> str:
    return ", ".join(str(site[k]) for k in ("city", "state", "country") if site.get(k))


@pytest.mark.parametrize("pair_id", real_pairs.pair_ids())
def test_every_site_line_names_the_site_as_one_of_the_records_spells_it(pair_id: str) -> None:
    pair = _pair(pair_id)
    if not real_pairs.run(pair).notified:
        pytest.skip("nothing notified")
    sites = _sites(pair.old) + _sites(pair.new)
    spelled = {"Site" + (f" {s['facility']}" if s.get("facility") else "") + f" ({_place(s)})" for s in sites}
    places = {f"Site in {_place(s)}" for s in sites}
    ctx = _context(pair)
    for change in ctx.changes:
        if change.field.startswith("locations."):
            label = change.label.split(" · ")[0]
            assert label in (places if label.startswith("Site in ") else spelled), label
    read = _read(ctx)
    for site in sites:
        facility = str(site.get("facility") or "")
        if facility and facility != facility.lower():
            assert f"{facility.lower()}|" not in read, f"the key of {facility!r} is shown"


def test_a_corrected_map_position_names_its_site_as_the_record_does() -> None:
    # Both versions: facility "Nanyang Second General Hospital", city "Nanyang", state "Henan",
    # zip "473012", country "China"; only geoPoint moved (32.99472, 112.53278 → 33.00524, 112.54659).
    ctx = _context(_pair(GEO))
    assert [c.label for c in ctx.changes] == [
        "Site Nanyang Second General Hospital (Nanyang, Henan, China) · latitude",
        "Site Nanyang Second General Hospital (Nanyang, Henan, China) · longitude",
    ]
    assert ctx.title.startswith("NCT06825494: Site Nanyang Second General Hospital (Nanyang, Henan, China) · latitude")
    for change in ctx.changes:
        assert change.event is not None
        data = dict(change.event.data)
        assert data.pop("site")  # the key stays for machines that match sites across messages
        assert data == {
            "part": change.field.rsplit(".", 2)[-2] + "." + change.field.rsplit(".", 1)[-1],
            "facility": "Nanyang Second General Hospital",
            "city": "Nanyang",
            "state": "Henan",
            "zip": "473012",
            "country": "China",
        }


def test_a_shortened_city_and_a_respelled_facility_read_as_the_record_writes_them() -> None:
    # Papageorgiou General Hospital of Thessaloniki, Thessaloniki, Greece, zip 564 03: city
    # "N. Efkapria-Pavlos Melas" → "Pavlos Melas". ICO in L'Hospitalet de Llobregat, Barcelona, Spain:
    # facility "ICO l?Hospitalet ? Hospital Duran i Reynals" → "ICO Hospitalet- Hospital Duran i Reynals".
    ctx = _context(_pair(READDRESSED))
    lines = [c.line for c in ctx.changes]
    assert (
        "Site in L'Hospitalet de Llobregat, Barcelona, Spain · name: "
        "ICO l?Hospitalet ? Hospital Duran i Reynals → ICO Hospitalet- Hospital Duran i Reynals"
    ) in lines
    [city] = [c for c in ctx.changes if c.field.endswith(".city")]
    assert city.label.startswith("Site Papageorgiou General Hospital of Thessaloniki (")
    assert city.label.endswith(", Thessaloniki, Greece) · city")
    assert city.line.endswith("city: N. Efkapria-Pavlos Melas → Pavlos Melas")
    read = _read(ctx)
    for lowered in ("Of Thessaloniki", "Efkapria-pavlos", "L'hospitalet De", "papageorgiou"):
        assert lowered not in read


def test_the_site_that_headlined_as_a_key_is_named_in_the_records_words() -> None:
    # 2026-02-13 → 03-09: National Cancer Center Hospital (Chūōku, Japan) NOT_YET_RECRUITING → RECRUITING;
    # nine facilities re-encoded, among them Assistance Publique-Hăpitaux de Marseille (Marseille, France).
    ctx = _context(_pair(REENCODED))
    assert "assistance publique" not in ctx.title
    assert "|" not in ctx.title
    assert "1 now RECRUITING: National Cancer Center Hospital, Chūōku" in ctx.title
    assert "9 edited: " in ctx.title


def test_a_facility_only_reencoded_is_one_edited_site() -> None:
    # Read off the two records, same position, zip, city and country; only the facility's bytes differ.
    reencoded = {
        (
            "São Paulo",
            "Hospital Beneficăncia Portuguesa de Săo Paulo",
            "Hospital Benefică Ncia Portuguesa de Să O Paulo",
        ),
        ("Créteil", "Centre Hospitalier Intercommunal de Crăteil", "Centre Hospitalier Intercommunal de Cră Teil"),
        ("Marseille", "Assistance Publique-Hăpitaux de Marseille", 'Assistance Publique-Hă"Pitaux de Marseille'),
        ("Mulhouse", "Ch de Mulhouse - Hăpital Emile Muller", 'Ch de Mulhouse - Hă"Pital Emile Muller'),
        (
            "Saint-Herblain",
            "Chu Nantes - Hăpital Guillaume Et Renă Laănnec",
            'Chu Nantes - Hă"Pital Guillaume Et Renă Laă<Nnec',
        ),
        ("Suresnes", "Hăpital Foch", 'Hă"Pital Foch'),
        (
            "Napoli",
            "Azienda Ospedaliera Universitaria- Universită Degli Studi Della Campania Âluigi Vanvitelliâ",
            "Azienda Ospedaliera Universitaria- Universită Degli Studi Della Campania Â Luigi Vanvitelliâ",
        ),
        (
            "Coimbra",
            "Centro Hospitalar E Universitărio de Coimbra E.P.E.",
            "Centro Hospitalar E Universită Rio de Coimbra E.P.E.",
        ),
        ("Guimarães", "Hospital Da Senhora Da Oliveira Guimarăes", "Hospital Da Senhora Da Oliveira Guimară Es"),
    }
    pair = _pair(REENCODED)
    changes = changes_between(pair.old, pair.new)
    sites = [c for c in changes if c.field.startswith("locations.")]
    assert not [c for c in sites if c.event and c.event.kind in ("site_added", "site_removed")]
    renamed = {
        (c.event.data["city"] if c.event else None, c.old, c.new) for c in sites if c.field.endswith(".facility")
    }
    assert renamed == reencoded
    ctx = _context(pair)
    [marseille] = [c for c in ctx.changes if c.old == "Assistance Publique-Hăpitaux de Marseille"]
    assert marseille.line == (
        "Site in Marseille, France · name: "
        'Assistance Publique-Hăpitaux de Marseille → Assistance Publique-Hă"Pitaux de Marseille'
    )
    assert ctx.trial is not None
    [summary] = [e.summary for e in ctx.trial.entries if isinstance(e, SummaryEntry)]
    assert "9 edited: " in summary
    assert "removed" not in summary and "added" not in summary


def test_a_facility_whose_encoding_was_repaired_with_its_status_is_one_site() -> None:
    # 2026-02-04 → 02-09: 'Assistance Publique-Hă"Pitaux de Marseille' (no status) becomes
    # 'Assistance Publique-Hăpitaux de Marseille' RECRUITING: one site now RECRUITING, none removed.
    pair = _pair(UNENCODED)
    changes = changes_between(pair.old, pair.new)
    assert not [c for c in changes if c.event and c.event.kind in ("site_added", "site_removed")]
    ctx = _context(pair)
    assert ctx.trial is not None
    [summary] = [e.summary for e in ctx.trial.entries if isinstance(e, SummaryEntry) and e.family == "locations"]
    assert "Assistance Publique-Hăpitaux de Marseille, Marseille" in summary.split(" · ")[0]
    assert summary.startswith("Sites: 176 now RECRUITING: ")


def test_a_readdressed_site_is_one_edited_site_named_where_it_is_and_was() -> None:
    # NCT07221253 2026-02-09 → 02-10: the Research Site at zip 10365, Germany moved from city
    # "Lichtenberg" to "Berlin" (and its geoPoint); no other German site changed but by status.
    ctx = _context(_pair("NCT07221253:2026-01-08_2026-02-09->2026-02-10_2026-02-10"))
    assert ctx.trial is not None
    [summary] = [e.summary for e in ctx.trial.entries if isinstance(e, SummaryEntry) and e.family == "locations"]
    assert "1 edited: Research Site, Berlin (was Lichtenberg)" in summary
