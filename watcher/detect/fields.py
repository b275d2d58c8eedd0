"""A study record as the API returns it → its flat, named fields.

Every part of the record lands in some field, so nothing real can be missed: the catalog
below names the parts we know, and any key the catalog does not know (the API schema
drifts) is kept under a generic name, `<module prefix>.<json key>`, never dropped.

Lists with a natural identity (sites, arms, outcomes, ...) become mappings from that
identity to the item, so reordering is never a change and an edit names its item. All
other values are kept as the record has them, shared rather than copied, because
extraction runs on every poll of records up to megabytes; `normalize` gives their
order-insensitive form (sets sorted, nested identity lists keyed), which is what
`watcher.detect.diff` compares and reports. Each results module is one field, reported by digest:
telling *that* 650 kB of adverse-event tables changed is cheap, describing *how* is not
this stage's job.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from watcher.models import Json

FieldKind = Literal["value", "text", "date", "set", "keyed", "criteria", "digest", "family"]

KeyFunc = Callable[[Mapping[str, Any]], str]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One entry of the field catalog.

    `source` is the JSON path in the study record; `key` names the identity of a keyed
    list's items (empty otherwise). A `family` field stands for one field per list item,
    e.g. `locations.<key>`.
    """

    name: str
    source: str
    kind: FieldKind
    description: str
    bookkeeping: bool = False
    headline: bool = False
    key: str = ""


# ---------------------------------------------------------------------------------------
# Identity keys
# ---------------------------------------------------------------------------------------


def _s(item: Mapping[str, Any], name: str) -> str:
    value = item.get(name)
    return value if type(value) is str else "" if value is None else str(value)


def _location_key(item: Mapping[str, Any]) -> str:
    get = item.get
    return f"{get('facility') or ''}|{get('city') or ''}|{get('state') or ''}|{get('country') or ''}".lower()


def _location_zip_key(item: Mapping[str, Any]) -> str:
    get = item.get
    parts = (get("facility"), get("city"), get("state"), get("zip"), get("country"))
    return "|".join("" if p is None else str(p) for p in parts).lower()


def _label_key(item: Mapping[str, Any]) -> str:
    return _s(item, "label")


def _type_name_key(item: Mapping[str, Any]) -> str:
    return f"{_s(item, 'type')}|{_s(item, 'name')}"


def _measure_key(item: Mapping[str, Any]) -> str:
    return _s(item, "measure")


def _measure_time_key(item: Mapping[str, Any]) -> str:
    return f"{_s(item, 'measure')}|{_s(item, 'timeFrame')}"


def _name_key(item: Mapping[str, Any]) -> str:
    return _s(item, "name")


def _name_role_key(item: Mapping[str, Any]) -> str:
    return f"{_s(item, 'name')}|{_s(item, 'role')}"


def _id_type_key(item: Mapping[str, Any]) -> str:
    return f"{_s(item, 'id')}|{_s(item, 'type')}"


def _reference_key(item: Mapping[str, Any]) -> str:
    return _s(item, "pmid") or _s(item, "citation")


def _url_key(item: Mapping[str, Any]) -> str:
    return _s(item, "url") or _s(item, "label")


def _id_key(item: Mapping[str, Any]) -> str:
    return _s(item, "id")


def _abbrev_key(item: Mapping[str, Any]) -> str:
    return _s(item, "abbrev") or _s(item, "name")


def _filename_key(item: Mapping[str, Any]) -> str:
    return _s(item, "filename") or _s(item, "label")


def _canonical(value: Json) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _scalar_sort_key(value: Json) -> tuple[str, str]:
    return (type(value).__name__, str(value))


# Lists inside items that have an identity of their own (location contacts, retractions).
_NESTED_KEYS: Mapping[str, KeyFunc] = {
    "contacts": _name_role_key,
    "retractions": lambda item: _s(item, "pmid") or _s(item, "source"),
}


def normalize(value: Json) -> Json:
    """The order-insensitive form of a value: known nested lists keyed, other lists sorted.

    Extraction keeps values as the record has them (so equal parts of two versions compare
    equal at C speed); `watcher.detect.diff` normalizes only the values that differ, and every
    value it reports. Parts that need no change are shared with the input, not copied.
    """
    kind = type(value)
    if kind is dict:
        out: dict[str, Json] | None = None
        for k, v in value.items():
            kv = type(v)
            if kv is list or kv is dict:
                key_func = _NESTED_KEYS.get(k) if kv is list else None
                if key_func is not None:
                    nv: Json = {ik: normalize(iv) for ik, iv in keyed(v, (key_func,)).items()}
                else:
                    nv = normalize(v)
                if nv is not v:
                    if out is None:
                        out = dict(value)
                    out[k] = nv
        return value if out is None else out
    if kind is list:
        if not any(type(i) is dict or type(i) is list for i in value):
            try:
                ordered = sorted(value)
            except TypeError:
                ordered = sorted(value, key=_scalar_sort_key)
            return value if ordered == value else ordered
        return sorted((normalize(i) for i in value), key=_canonical)
    return value


def keyed(items: Iterable[Any], keys: Sequence[KeyFunc]) -> dict[str, Json]:
    """Items by identity: the first key that is unique wins; duplicates get `#2`, `#3`, ...

    Each key function is tried in turn on the items that still collide, then the rest get
    an occurrence suffix in the order of their content, so that the result does not depend
    on the list's order. Items are kept as they are (see `normalize`); an item that is not
    an object is keyed by its JSON text rather than dropped.
    """
    first = keys[0]
    out: dict[str, Json] = {}
    items = list(items)
    for item in items:
        key = first(item) if type(item) is dict else _canonical(item)
        if key in out:
            break
        out[key] = item
    else:
        return out
    out.clear()
    _assign(items, keys, out)
    return out


def _assign(items: list[Json], keys: Sequence[KeyFunc], out: dict[str, Json]) -> None:
    groups: dict[str, list[Json]] = {}
    for item in items:
        key = keys[0](item) if type(item) is dict else _canonical(item)
        groups.setdefault(key, []).append(item)
    for key, group in groups.items():
        if len(group) == 1 and key not in out:
            out[key] = group[0]
        elif len(keys) > 1:
            _assign(group, keys[1:], out)
        else:
            n = 1
            for item in sorted(group, key=lambda i: _canonical(normalize(i))):
                name = key
                while name in out:
                    n += 1
                    name = f"{key}#{n}"
                out[name] = item


def fingerprint(value: Json) -> str:
    """A short, stable digest that changes whenever the value does (key order ignored)."""
    text = json.dumps(value, sort_keys=True, check_circular=False, separators=(",", ":"))
    return "blake2b:" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


# ---------------------------------------------------------------------------------------
# The catalog
# ---------------------------------------------------------------------------------------

_P = "protocolSection."
_ST = _P + "statusModule."
_ID = _P + "identificationModule."
_SP = _P + "sponsorCollaboratorsModule."
_DE = _P + "designModule."
_EL = _P + "eligibilityModule."
_CL = _P + "contactsLocationsModule."
_AI = _P + "armsInterventionsModule."
_OU = _P + "outcomesModule."
_OV = _P + "oversightModule."
_RS = "resultsSection."


def _f(
    name: str,
    source: str,
    kind: FieldKind,
    description: str,
    *,
    bookkeeping: bool = False,
    headline: bool = False,
    key: str = "",
) -> FieldSpec:
    return FieldSpec(name, source, kind, description, bookkeeping, headline, key)


def _date(name: str, struct: str, what: str, *, bookkeeping: bool = False, headline: bool = False) -> tuple[
    FieldSpec, FieldSpec
]:
    return (
        _f(name, struct + ".date", "date", f"{what} (yyyy, yyyy-MM or yyyy-MM-dd)",
           bookkeeping=bookkeeping, headline=headline),
        _f(name + "Type", struct + ".type", "value", f"{what}: ACTUAL or ESTIMATED", bookkeeping=bookkeeping),
    )


_HEADLINE: tuple[FieldSpec, ...] = (
    _f("status.overallStatus", _ST + "overallStatus", "value", "Overall recruitment status", headline=True),
    _f("status.primaryCompletionDate", _ST + "primaryCompletionDateStruct.date", "date",
       "Primary completion date (yyyy, yyyy-MM or yyyy-MM-dd)", headline=True),
    _f("status.completionDate", _ST + "completionDateStruct.date", "date",
       "Study completion date (yyyy, yyyy-MM or yyyy-MM-dd)", headline=True),
    _f("status.lastUpdatePostDate", _ST + "lastUpdatePostDateStruct.date", "date",
       "Date the last update was posted", headline=True, bookkeeping=True),
    _f("design.phases", _DE + "phases", "set", "Phases (a set; absent for observational studies)",
       headline=True),
    _f("design.enrollmentCount", _DE + "enrollmentInfo.count", "value", "Enrollment (target or actual)",
       headline=True),
    _f("eligibility.criteria", _EL + "eligibilityCriteria", "criteria",
       "Eligibility criteria text; compared per criterion line", headline=True),
    _f("eligibility.minAge", _EL + "minimumAge", "value", "Minimum age, e.g. '18 Years'", headline=True),
    _f("eligibility.sex", _EL + "sex", "value", "ALL, FEMALE or MALE", headline=True),
    _f("outcomes.primary", _OU + "primaryOutcomes", "keyed", "Primary outcome measures", headline=True,
       key="measure (+ |timeFrame when measures repeat)"),
    _f("armsInterventions.arms", _AI + "armGroups", "keyed", "Arm groups", headline=True, key="label"),
    _f("armsInterventions.interventions", _AI + "interventions", "keyed", "Interventions", headline=True,
       key="type|name"),
    _f("sponsor.lead", _SP + "leadSponsor.name", "value", "Lead sponsor name", headline=True),
    _f("sponsor.collaborators", _SP + "collaborators", "keyed", "Collaborators", headline=True, key="name"),
    _f("results.hasResults", "hasResults", "value", "Whether results are posted", headline=True),
    _f("locations.<key>", _CL + "locations", "family", "One field per site", headline=True,
       key="facility|city|state|country (lower case); then facility|city|state|zip|country; then #n"),
)

_REST: tuple[FieldSpec, ...] = (
    # identification
    _f("identification.nctId", _ID + "nctId", "value", "NCT number"),
    _f("identification.nctIdAliases", _ID + "nctIdAliases", "set", "Obsolete or duplicate NCT numbers"),
    _f("identification.orgStudyId", _ID + "orgStudyIdInfo", "value", "Sponsor's study id {id, type, link}"),
    _f("identification.secondaryIds", _ID + "secondaryIdInfos", "keyed", "Secondary ids", key="id|type"),
    _f("identification.briefTitle", _ID + "briefTitle", "text", "Brief title"),
    _f("identification.officialTitle", _ID + "officialTitle", "text", "Official title"),
    _f("identification.acronym", _ID + "acronym", "value", "Acronym"),
    _f("identification.organization", _ID + "organization", "value", "Organization {fullName, class}"),
    # status
    _f("status.statusVerifiedDate", _ST + "statusVerifiedDate", "date", "Date the status was last verified",
       bookkeeping=True),
    _f("status.lastKnownStatus", _ST + "lastKnownStatus", "value", "Last known status (when UNKNOWN)"),
    _f("status.delayedPosting", _ST + "delayedPosting", "value", "Posting delayed (device trials)"),
    _f("status.whyStopped", _ST + "whyStopped", "text", "Why the study stopped"),
    _f("status.expandedAccess", _ST + "expandedAccessInfo", "value", "Expanded access information"),
    *_date("status.startDate", _ST + "startDateStruct", "Study start date"),
    _f("status.primaryCompletionDateType", _ST + "primaryCompletionDateStruct.type", "value",
       "Primary completion date: ACTUAL or ESTIMATED"),
    _f("status.completionDateType", _ST + "completionDateStruct.type", "value",
       "Study completion date: ACTUAL or ESTIMATED"),
    _f("status.studyFirstSubmitDate", _ST + "studyFirstSubmitDate", "date", "First submitted"),
    _f("status.studyFirstSubmitQcDate", _ST + "studyFirstSubmitQcDate", "date",
       "First submitted that met QC"),
    *_date("status.studyFirstPostDate", _ST + "studyFirstPostDateStruct", "First posted"),
    _f("status.dispFirstSubmitDate", _ST + "dispFirstSubmitDate", "date",
       "Certification/delay first submitted"),
    _f("status.dispFirstSubmitQcDate", _ST + "dispFirstSubmitQcDate", "date", "Certification/delay met QC"),
    *_date("status.dispFirstPostDate", _ST + "dispFirstPostDateStruct", "Certification/delay first posted"),
    _f("status.lastUpdateSubmitDate", _ST + "lastUpdateSubmitDate", "date", "Last update submitted",
       bookkeeping=True),
    _f("status.lastUpdatePostDateType", _ST + "lastUpdatePostDateStruct.type", "value",
       "Last update posted: ACTUAL or ESTIMATED", bookkeeping=True),
    # results (status module part)
    _f("results.waived", _ST + "resultsWaived", "value", "Results waived"),
    _f("results.firstSubmitDate", _ST + "resultsFirstSubmitDate", "date", "Results first submitted"),
    _f("results.firstSubmitQcDate", _ST + "resultsFirstSubmitQcDate", "date",
       "Results first submitted that met QC"),
    *_date("results.firstPostDate", _ST + "resultsFirstPostDateStruct", "Results first posted"),
    # sponsor
    _f("sponsor.leadClass", _SP + "leadSponsor.class", "value", "Lead sponsor class (INDUSTRY, NIH, ...)"),
    _f("sponsor.responsibleParty", _SP + "responsibleParty", "value", "Responsible party"),
    # oversight
    _f("oversight.oversightHasDmc", _OV + "oversightHasDmc", "value", "Has a data monitoring committee"),
    _f("oversight.isFdaRegulatedDrug", _OV + "isFdaRegulatedDrug", "value", "FDA-regulated drug"),
    _f("oversight.isFdaRegulatedDevice", _OV + "isFdaRegulatedDevice", "value",
       "FDA-regulated device"),
    _f("oversight.isUnapprovedDevice", _OV + "isUnapprovedDevice", "value", "Unapproved device"),
    _f("oversight.isPpsd", _OV + "isPpsd", "value", "Pediatric postmarket surveillance"),
    _f("oversight.isUsExport", _OV + "isUsExport", "value", "Exported from the US"),
    _f("oversight.fdaaa801Violation", _OV + "fdaaa801Violation", "value", "FDAAA 801 violation"),
    # description
    _f("description.briefSummary", _P + "descriptionModule.briefSummary", "text", "Brief summary"),
    _f("description.detailedDescription", _P + "descriptionModule.detailedDescription", "text",
       "Detailed description"),
    # conditions
    _f("conditions.conditions", _P + "conditionsModule.conditions", "set", "Conditions (a set)"),
    _f("conditions.keywords", _P + "conditionsModule.keywords", "set", "Keywords (a set)"),
    # design
    _f("design.studyType", _DE + "studyType", "value", "INTERVENTIONAL, OBSERVATIONAL or EXPANDED_ACCESS"),
    _f("design.enrollmentType", _DE + "enrollmentInfo.type", "value", "Enrollment: ACTUAL or ESTIMATED"),
    _f("design.allocation", _DE + "designInfo.allocation", "value", "Allocation"),
    _f("design.interventionModel", _DE + "designInfo.interventionModel", "value", "Intervention model"),
    _f("design.interventionModelDescription", _DE + "designInfo.interventionModelDescription", "text",
       "Intervention model description"),
    _f("design.primaryPurpose", _DE + "designInfo.primaryPurpose", "value", "Primary purpose"),
    _f("design.observationalModel", _DE + "designInfo.observationalModel", "value", "Observational model"),
    _f("design.timePerspective", _DE + "designInfo.timePerspective", "value", "Time perspective"),
    _f("design.masking", _DE + "designInfo.maskingInfo", "value",
       "Masking {masking, maskingDescription, whoMasked}"),
    _f("design.patientRegistry", _DE + "patientRegistry", "value", "Patient registry"),
    _f("design.targetDuration", _DE + "targetDuration", "value", "Target follow-up duration"),
    _f("design.bioSpec", _DE + "bioSpec", "value", "Biospecimen retention and description"),
    _f("design.expandedAccessTypes", _DE + "expandedAccessTypes", "value", "Expanded access types"),
    _f("design.nPtrsToThisExpAccNctId", _DE + "nPtrsToThisExpAccNctId", "value",
       "Studies pointing to this expanded access record"),
    # arms and interventions: headline
    # outcomes
    _f("outcomes.secondary", _OU + "secondaryOutcomes", "keyed", "Secondary outcome measures",
       key="measure (+ |timeFrame when measures repeat)"),
    _f("outcomes.other", _OU + "otherOutcomes", "keyed", "Other outcome measures",
       key="measure (+ |timeFrame when measures repeat)"),
    # eligibility
    _f("eligibility.maxAge", _EL + "maximumAge", "value", "Maximum age"),
    _f("eligibility.healthyVolunteers", _EL + "healthyVolunteers", "value", "Accepts healthy volunteers"),
    _f("eligibility.genderBased", _EL + "genderBased", "value", "Eligibility based on gender"),
    _f("eligibility.genderDescription", _EL + "genderDescription", "text", "Gender eligibility description"),
    _f("eligibility.stdAges", _EL + "stdAges", "set", "Age groups (CHILD, ADULT, OLDER_ADULT)"),
    _f("eligibility.studyPopulation", _EL + "studyPopulation", "text", "Study population (observational)"),
    _f("eligibility.samplingMethod", _EL + "samplingMethod", "value", "Sampling method (observational)"),
    # contacts
    _f("contacts.central", _CL + "centralContacts", "keyed", "Central contacts", key="name|role"),
    _f("contacts.officials", _CL + "overallOfficials", "keyed", "Overall officials", key="name|role"),
    # references
    _f("references.references", _P + "referencesModule.references", "keyed", "Publications",
       key="pmid, else citation"),
    _f("references.seeAlsoLinks", _P + "referencesModule.seeAlsoLinks", "keyed", "Links", key="url"),
    _f("references.availIpds", _P + "referencesModule.availIpds", "keyed", "Available IPD/documents",
       key="id|type"),
    # IPD sharing
    _f("ipdSharing.ipdSharing", _P + "ipdSharingStatementModule.ipdSharing", "value", "YES, NO or UNDECIDED"),
    _f("ipdSharing.description", _P + "ipdSharingStatementModule.description", "text", "IPD sharing plan"),
    _f("ipdSharing.infoTypes", _P + "ipdSharingStatementModule.infoTypes", "set", "Shared document types"),
    _f("ipdSharing.timeFrame", _P + "ipdSharingStatementModule.timeFrame", "text", "IPD sharing time frame"),
    _f("ipdSharing.accessCriteria", _P + "ipdSharingStatementModule.accessCriteria", "text",
       "IPD access criteria"),
    _f("ipdSharing.url", _P + "ipdSharingStatementModule.url", "value", "IPD sharing URL"),
    # results section: one fingerprint per module
    _f("results.participantFlow", _RS + "participantFlowModule", "digest", "Participant flow (digest)"),
    _f("results.baselineCharacteristics", "resultsSection.baselineCharacteristicsModule", "digest",
       "Baseline characteristics (digest)"),
    _f("results.outcomeMeasures", "resultsSection.outcomeMeasuresModule", "digest",
       "Outcome measure results (digest)"),
    _f("results.adverseEvents", "resultsSection.adverseEventsModule", "digest", "Adverse events (digest)"),
    _f("results.moreInfo", "resultsSection.moreInfoModule", "digest",
       "Limitations, agreements, point of contact (digest)"),
    # documents and annotations
    _f("documents.largeDocs", "documentSection.largeDocumentModule.largeDocs", "keyed",
       "Protocol, SAP and consent documents", key="filename"),
    _f("documents.noSap", "documentSection.largeDocumentModule.noSap", "value",
       "No statistical analysis plan"),
    _f("annotation.unpostedAnnotation", "annotationSection.annotationModule.unpostedAnnotation", "value",
       "Unposted results events"),
    _f("annotation.violationAnnotation", "annotationSection.annotationModule.violationAnnotation", "value",
       "FDAAA 801 violation events"),
    # derived: bookkeeping
    _f("derived.versionHolder", "derivedSection.miscInfoModule.versionHolder", "date",
       "Data version date (changes with every data refresh)", bookkeeping=True),
    _f("derived.removedCountries", "derivedSection.miscInfoModule.removedCountries", "set",
       "Countries that no longer have sites", bookkeeping=True),
    _f("derived.submissionTracking", "derivedSection.miscInfoModule.submissionTracking", "value",
       "Submission tracking", bookkeeping=True),
    _f("derived.modelPredictions", "derivedSection.miscInfoModule.modelPredictions", "value",
       "Model predictions (e.g. BMI limits)", bookkeeping=True),
    *(
        _f(f"derived.{browse}.{part}", f"derivedSection.{browse}Module.{part}", "keyed",
           f"{browse} {part} (MeSH)", bookkeeping=True, key=key)
        for browse in ("conditionBrowse", "interventionBrowse")
        for part, key in (("meshes", "id"), ("ancestors", "id"), ("browseLeaves", "id"),
                          ("browseBranches", "abbrev"))
    ),
)

CATALOG: tuple[FieldSpec, ...] = _HEADLINE + _REST
"""Every named field, in report order: the seed's headline fields first, then by module."""

GENERIC_PREFIXES: Mapping[str, str] = {
    "protocolSection.identificationModule": "identification",
    "protocolSection.statusModule": "status",
    "protocolSection.sponsorCollaboratorsModule": "sponsor",
    "protocolSection.oversightModule": "oversight",
    "protocolSection.descriptionModule": "description",
    "protocolSection.conditionsModule": "conditions",
    "protocolSection.designModule": "design",
    "protocolSection.armsInterventionsModule": "armsInterventions",
    "protocolSection.outcomesModule": "outcomes",
    "protocolSection.eligibilityModule": "eligibility",
    "protocolSection.contactsLocationsModule": "contacts",
    "protocolSection.referencesModule": "references",
    "protocolSection.ipdSharingStatementModule": "ipdSharing",
    "protocolSection": "protocol",
    "resultsSection": "results",
    "documentSection.largeDocumentModule": "documents",
    "documentSection": "documents",
    "annotationSection.annotationModule": "annotation",
    "annotationSection": "annotation",
    "derivedSection.miscInfoModule": "derived",
    "derivedSection.conditionBrowseModule": "derived.conditionBrowse",
    "derivedSection.interventionBrowseModule": "derived.interventionBrowse",
    "derivedSection": "derived",
    "": "record",
}
"""Where unknown keys go: a key the catalog does not know, found under one of these JSON
paths, becomes the field `<prefix>.<rest of its path>`; e.g. an unknown
`protocolSection.contactsLocationsModule.locations_nested` becomes `contacts.locations_nested`."""

_BY_NAME: Mapping[str, FieldSpec] = {spec.name: spec for spec in CATALOG}
_RANK: Mapping[str, int] = {spec.name: rank for rank, spec in enumerate(CATALOG)}
_PREFIX_RANK: dict[str, int] = {}
for _rank, _spec in enumerate(CATALOG):
    _PREFIX_RANK[_spec.name.split(".", 1)[0]] = _rank
_PREFIX_RANK["locations"] = _RANK["locations.<key>"]

_KEYS: Mapping[str, tuple[KeyFunc, ...]] = {
    "outcomes.primary": (_measure_key, _measure_time_key),
    "outcomes.secondary": (_measure_key, _measure_time_key),
    "outcomes.other": (_measure_key, _measure_time_key),
    "armsInterventions.arms": (_label_key,),
    "armsInterventions.interventions": (_type_name_key,),
    "sponsor.collaborators": (_name_key,),
    "identification.secondaryIds": (_id_type_key,),
    "contacts.central": (_name_role_key,),
    "contacts.officials": (_name_role_key,),
    "references.references": (_reference_key,),
    "references.seeAlsoLinks": (_url_key,),
    "references.availIpds": (_id_type_key,),
    "documents.largeDocs": (_filename_key,),
    "locations.<key>": (_location_key, _location_zip_key),
    **{
        f"derived.{browse}.{part}": ((_abbrev_key,) if part == "browseBranches" else (_id_key,))
        for browse in ("conditionBrowse", "interventionBrowse")
        for part in ("meshes", "ancestors", "browseLeaves", "browseBranches")
    },
}


def catalog_table() -> str:
    """The catalog as a markdown table, for the README."""
    rows = ["| field | kind | source (JSON path) | identity key | notes |", "|---|---|---|---|---|"]
    for spec in CATALOG:
        notes = spec.description + ("; bookkeeping, not notified by default" if spec.bookkeeping else "")
        key = f"`{spec.key}`" if spec.key else ""
        cells = (f"`{spec.name}`", spec.kind, f"`{spec.source}`", key, notes)
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"


def spec_for(name: str) -> FieldSpec | None:
    """The catalog entry a field name belongs to (`locations.x|y||z` → `locations.<key>`)."""
    spec = _BY_NAME.get(name)
    if spec is None and name.startswith("locations."):
        return _BY_NAME["locations.<key>"]
    return spec


def field_rank(name: str) -> tuple[int, str]:
    """Sort key for report order: catalog position, then name; unknown fields follow their module."""
    rank = _RANK.get(name)
    if rank is None:
        rank = _PREFIX_RANK.get(name.split(".", 1)[0], len(CATALOG))
    return (rank, name)


def field_kind(name: str) -> FieldKind:
    """How a field's value is compared; unknown results modules are digests like known ones."""
    spec = spec_for(name)
    if spec is not None:
        return "value" if spec.kind == "family" else spec.kind
    return "digest" if name.startswith("results.") else "value"


def is_bookkeeping(name: str) -> bool:
    spec = spec_for(name)
    return (spec is not None and spec.bookkeeping) or name.startswith("derived.")


# ---------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------


class _Node:
    """The catalog as a tree over JSON paths, for one walk of the record."""

    __slots__ = ("children", "prefix", "spec")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.spec: FieldSpec | None = None
        self.prefix: str | None = None


def _build_tree() -> _Node:
    root = _Node()
    for spec in CATALOG:
        node = root
        for part in spec.source.split("."):
            node = node.children.setdefault(part, _Node())
        node.spec = spec
    for path, prefix in GENERIC_PREFIXES.items():
        node = root
        for part in path.split(".") if path else ():
            node = node.children.setdefault(part, _Node())
        node.prefix = prefix
    return root


_TREE = _build_tree()


def extract_fields(study: Mapping[str, Any]) -> dict[str, Json]:
    """The study's fields by name, every part of the record accounted for.

    Absent parts give absent fields (not None), so a module that appears or disappears
    reports its fields as added or removed. Keyed lists are keyed here; everything else is
    the record's own value, shared, not copied: treat the result as read-only, and use
    `normalize` (as `watcher.detect.diff` does) for the order-insensitive form of a value.
    """
    out: dict[str, Json] = {}
    _walk(study, _TREE, "record", (), out)
    return out


def _walk(
    value: Mapping[str, Any], node: _Node, prefix: str, rest: tuple[str, ...], out: dict[str, Json]
) -> None:
    children = node.children
    for key, child_value in value.items():
        child = children.get(key)
        if child is None:
            _generic(prefix, (*rest, key), child_value, out)
            continue
        spec = child.spec
        if spec is not None:
            if spec.kind in _AS_IS:
                out[spec.name] = child_value
            else:
                _emit(spec, child_value, out)
        elif type(child_value) is dict or isinstance(child_value, Mapping):
            if child.prefix is not None:
                _walk(child_value, child, child.prefix, (), out)
            else:
                _walk(child_value, child, prefix, (*rest, key), out)
        else:
            _generic(prefix, (*rest, key), child_value, out)


_AS_IS = frozenset({"value", "text", "date", "set", "criteria", "digest"})


def _generic(prefix: str, path: tuple[str, ...], value: Json, out: dict[str, Json]) -> None:
    name = ".".join((prefix, *path))
    if name in _BY_NAME:
        name = ".".join((prefix, "unknown", *path))
    out[name] = value


def _emit(spec: FieldSpec, value: Json, out: dict[str, Json]) -> None:
    if spec.kind == "family":
        if type(value) is list:
            for key, item in keyed(value, _KEYS[spec.name]).items():
                out["locations." + key] = item
        else:
            out[spec.name.replace("<key>", "?")] = value
    elif spec.kind == "keyed" and type(value) is list:
        out[spec.name] = keyed(value, _KEYS[spec.name])
    else:
        out[spec.name] = value
