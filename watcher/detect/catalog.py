"""The field catalog, as data: every field of a study record we know by name, and its look-ups.

Each `FieldSpec` names a part of the record (its JSON path), how its value is compared, and
whether it is bookkeeping; `GENERIC_PREFIXES` says what a part the catalog does not know is
called. `watcher.detect.fields` walks a record along this catalog; `spec_for`, `field_rank`,
`field_kind` and `is_bookkeeping` answer for any field name, known or generic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

FieldKind = Literal["value", "text", "date", "set", "keyed", "criteria", "digest", "family"]


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


def _date(
    name: str, struct: str, what: str, *, bookkeeping: bool = False, headline: bool = False
) -> tuple[FieldSpec, FieldSpec]:
    return (
        _f(
            name,
            struct + ".date",
            "date",
            f"{what} (yyyy, yyyy-MM or yyyy-MM-dd)",
            bookkeeping=bookkeeping,
            headline=headline,
        ),
        _f(name + "Type", struct + ".type", "value", f"{what}: ACTUAL or ESTIMATED", bookkeeping=bookkeeping),
    )


_HEADLINE: tuple[FieldSpec, ...] = (
    _f("status.overallStatus", _ST + "overallStatus", "value", "Overall recruitment status", headline=True),
    _f(
        "status.primaryCompletionDate",
        _ST + "primaryCompletionDateStruct.date",
        "date",
        "Primary completion date (yyyy, yyyy-MM or yyyy-MM-dd)",
        headline=True,
    ),
    _f(
        "status.completionDate",
        _ST + "completionDateStruct.date",
        "date",
        "Study completion date (yyyy, yyyy-MM or yyyy-MM-dd)",
        headline=True,
    ),
    _f(
        "status.lastUpdatePostDate",
        _ST + "lastUpdatePostDateStruct.date",
        "date",
        "Date the last update was posted",
        headline=True,
        bookkeeping=True,
    ),
    _f("design.phases", _DE + "phases", "set", "Phases (a set; absent for observational studies)", headline=True),
    _f("design.enrollmentCount", _DE + "enrollmentInfo.count", "value", "Enrollment (target or actual)", headline=True),
    _f(
        "eligibility.criteria",
        _EL + "eligibilityCriteria",
        "criteria",
        "Eligibility criteria text; compared per criterion line",
        headline=True,
    ),
    _f("eligibility.minAge", _EL + "minimumAge", "value", "Minimum age, e.g. '18 Years'", headline=True),
    _f("eligibility.sex", _EL + "sex", "value", "ALL, FEMALE or MALE", headline=True),
    _f(
        "outcomes.primary",
        _OU + "primaryOutcomes",
        "keyed",
        "Primary outcome measures",
        headline=True,
        key="measure (+ |timeFrame when measures repeat)",
    ),
    _f("armsInterventions.arms", _AI + "armGroups", "keyed", "Arm groups", headline=True, key="label"),
    _f(
        "armsInterventions.interventions",
        _AI + "interventions",
        "keyed",
        "Interventions",
        headline=True,
        key="type|name",
    ),
    _f("sponsor.lead", _SP + "leadSponsor.name", "value", "Lead sponsor name", headline=True),
    _f("sponsor.collaborators", _SP + "collaborators", "keyed", "Collaborators", headline=True, key="name"),
    _f("results.hasResults", "hasResults", "value", "Whether results are posted", headline=True),
    _f(
        "locations.<key>",
        _CL + "locations",
        "family",
        "One field per site",
        headline=True,
        key="facility|city|state|country (lower case); then facility|city|state|zip|country; then #n",
    ),
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
    _f(
        "status.statusVerifiedDate",
        _ST + "statusVerifiedDate",
        "date",
        "Date the status was last verified",
        bookkeeping=True,
    ),
    _f("status.lastKnownStatus", _ST + "lastKnownStatus", "value", "Last known status (when UNKNOWN)"),
    _f("status.delayedPosting", _ST + "delayedPosting", "value", "Posting delayed (device trials)"),
    _f("status.whyStopped", _ST + "whyStopped", "text", "Why the study stopped"),
    _f("status.expandedAccess", _ST + "expandedAccessInfo", "value", "Expanded access information"),
    *_date("status.startDate", _ST + "startDateStruct", "Study start date"),
    _f(
        "status.primaryCompletionDateType",
        _ST + "primaryCompletionDateStruct.type",
        "value",
        "Primary completion date: ACTUAL or ESTIMATED",
    ),
    _f(
        "status.completionDateType",
        _ST + "completionDateStruct.type",
        "value",
        "Study completion date: ACTUAL or ESTIMATED",
    ),
    _f("status.studyFirstSubmitDate", _ST + "studyFirstSubmitDate", "date", "First submitted"),
    _f("status.studyFirstSubmitQcDate", _ST + "studyFirstSubmitQcDate", "date", "First submitted that met QC"),
    *_date("status.studyFirstPostDate", _ST + "studyFirstPostDateStruct", "First posted"),
    _f("status.dispFirstSubmitDate", _ST + "dispFirstSubmitDate", "date", "Certification/delay first submitted"),
    _f("status.dispFirstSubmitQcDate", _ST + "dispFirstSubmitQcDate", "date", "Certification/delay met QC"),
    *_date("status.dispFirstPostDate", _ST + "dispFirstPostDateStruct", "Certification/delay first posted"),
    _f("status.lastUpdateSubmitDate", _ST + "lastUpdateSubmitDate", "date", "Last update submitted", bookkeeping=True),
    _f(
        "status.lastUpdatePostDateType",
        _ST + "lastUpdatePostDateStruct.type",
        "value",
        "Last update posted: ACTUAL or ESTIMATED",
        bookkeeping=True,
    ),
    # results (status module part)
    _f("results.waived", _ST + "resultsWaived", "value", "Results waived"),
    _f("results.firstSubmitDate", _ST + "resultsFirstSubmitDate", "date", "Results first submitted"),
    _f("results.firstSubmitQcDate", _ST + "resultsFirstSubmitQcDate", "date", "Results first submitted that met QC"),
    *_date("results.firstPostDate", _ST + "resultsFirstPostDateStruct", "Results first posted"),
    # sponsor
    _f("sponsor.leadClass", _SP + "leadSponsor.class", "value", "Lead sponsor class (INDUSTRY, NIH, ...)"),
    _f("sponsor.responsibleParty", _SP + "responsibleParty", "value", "Responsible party"),
    # oversight
    _f("oversight.oversightHasDmc", _OV + "oversightHasDmc", "value", "Has a data monitoring committee"),
    _f("oversight.isFdaRegulatedDrug", _OV + "isFdaRegulatedDrug", "value", "FDA-regulated drug"),
    _f("oversight.isFdaRegulatedDevice", _OV + "isFdaRegulatedDevice", "value", "FDA-regulated device"),
    _f("oversight.isUnapprovedDevice", _OV + "isUnapprovedDevice", "value", "Unapproved device"),
    _f("oversight.isPpsd", _OV + "isPpsd", "value", "Pediatric postmarket surveillance"),
    _f("oversight.isUsExport", _OV + "isUsExport", "value", "Exported from the US"),
    _f("oversight.fdaaa801Violation", _OV + "fdaaa801Violation", "value", "FDAAA 801 violation"),
    # description
    _f("description.briefSummary", _P + "descriptionModule.briefSummary", "text", "Brief summary"),
    _f("description.detailedDescription", _P + "descriptionModule.detailedDescription", "text", "Detailed description"),
    # conditions
    _f("conditions.conditions", _P + "conditionsModule.conditions", "set", "Conditions (a set)"),
    _f("conditions.keywords", _P + "conditionsModule.keywords", "set", "Keywords (a set)"),
    # design
    _f("design.studyType", _DE + "studyType", "value", "INTERVENTIONAL, OBSERVATIONAL or EXPANDED_ACCESS"),
    _f("design.enrollmentType", _DE + "enrollmentInfo.type", "value", "Enrollment: ACTUAL or ESTIMATED"),
    _f("design.allocation", _DE + "designInfo.allocation", "value", "Allocation"),
    _f("design.interventionModel", _DE + "designInfo.interventionModel", "value", "Intervention model"),
    _f(
        "design.interventionModelDescription",
        _DE + "designInfo.interventionModelDescription",
        "text",
        "Intervention model description",
    ),
    _f("design.primaryPurpose", _DE + "designInfo.primaryPurpose", "value", "Primary purpose"),
    _f("design.observationalModel", _DE + "designInfo.observationalModel", "value", "Observational model"),
    _f("design.timePerspective", _DE + "designInfo.timePerspective", "value", "Time perspective"),
    _f("design.masking", _DE + "designInfo.maskingInfo", "value", "Masking {masking, maskingDescription, whoMasked}"),
    _f("design.patientRegistry", _DE + "patientRegistry", "value", "Patient registry"),
    _f("design.targetDuration", _DE + "targetDuration", "value", "Target follow-up duration"),
    _f("design.bioSpec", _DE + "bioSpec", "value", "Biospecimen retention and description"),
    _f("design.expandedAccessTypes", _DE + "expandedAccessTypes", "value", "Expanded access types"),
    _f(
        "design.nPtrsToThisExpAccNctId",
        _DE + "nPtrsToThisExpAccNctId",
        "value",
        "Studies pointing to this expanded access record",
    ),
    # arms and interventions: headline
    # outcomes
    _f(
        "outcomes.secondary",
        _OU + "secondaryOutcomes",
        "keyed",
        "Secondary outcome measures",
        key="measure (+ |timeFrame when measures repeat)",
    ),
    _f(
        "outcomes.other",
        _OU + "otherOutcomes",
        "keyed",
        "Other outcome measures",
        key="measure (+ |timeFrame when measures repeat)",
    ),
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
    _f("references.references", _P + "referencesModule.references", "keyed", "Publications", key="pmid, else citation"),
    _f("references.seeAlsoLinks", _P + "referencesModule.seeAlsoLinks", "keyed", "Links", key="url"),
    _f("references.availIpds", _P + "referencesModule.availIpds", "keyed", "Available IPD/documents", key="id|type"),
    # IPD sharing
    _f("ipdSharing.ipdSharing", _P + "ipdSharingStatementModule.ipdSharing", "value", "YES, NO or UNDECIDED"),
    _f("ipdSharing.description", _P + "ipdSharingStatementModule.description", "text", "IPD sharing plan"),
    _f("ipdSharing.infoTypes", _P + "ipdSharingStatementModule.infoTypes", "set", "Shared document types"),
    _f("ipdSharing.timeFrame", _P + "ipdSharingStatementModule.timeFrame", "text", "IPD sharing time frame"),
    _f("ipdSharing.accessCriteria", _P + "ipdSharingStatementModule.accessCriteria", "text", "IPD access criteria"),
    _f("ipdSharing.url", _P + "ipdSharingStatementModule.url", "value", "IPD sharing URL"),
    # results section: one fingerprint per module
    _f("results.participantFlow", _RS + "participantFlowModule", "digest", "Participant flow (digest)"),
    _f(
        "results.baselineCharacteristics",
        "resultsSection.baselineCharacteristicsModule",
        "digest",
        "Baseline characteristics (digest)",
    ),
    _f("results.outcomeMeasures", "resultsSection.outcomeMeasuresModule", "digest", "Outcome measure results (digest)"),
    _f("results.adverseEvents", "resultsSection.adverseEventsModule", "digest", "Adverse events (digest)"),
    _f(
        "results.moreInfo",
        "resultsSection.moreInfoModule",
        "digest",
        "Limitations, agreements, point of contact (digest)",
    ),
    # documents and annotations
    _f(
        "documents.largeDocs",
        "documentSection.largeDocumentModule.largeDocs",
        "keyed",
        "Protocol, SAP and consent documents",
        key="filename",
    ),
    _f("documents.noSap", "documentSection.largeDocumentModule.noSap", "value", "No statistical analysis plan"),
    _f(
        "annotation.unpostedAnnotation",
        "annotationSection.annotationModule.unpostedAnnotation",
        "value",
        "Unposted results events",
    ),
    _f(
        "annotation.violationAnnotation",
        "annotationSection.annotationModule.violationAnnotation",
        "value",
        "FDAAA 801 violation events",
    ),
    # derived: bookkeeping
    _f(
        "derived.versionHolder",
        "derivedSection.miscInfoModule.versionHolder",
        "date",
        "Data version date (changes with every data refresh)",
        bookkeeping=True,
    ),
    _f(
        "derived.removedCountries",
        "derivedSection.miscInfoModule.removedCountries",
        "set",
        "Countries that no longer have sites",
        bookkeeping=True,
    ),
    _f(
        "derived.submissionTracking",
        "derivedSection.miscInfoModule.submissionTracking",
        "value",
        "Submission tracking",
        bookkeeping=True,
    ),
    _f(
        "derived.modelPredictions",
        "derivedSection.miscInfoModule.modelPredictions",
        "value",
        "Model predictions (e.g. BMI limits)",
        bookkeeping=True,
    ),
    *(
        _f(
            f"derived.{browse}.{part}",
            f"derivedSection.{browse}Module.{part}",
            "keyed",
            f"{browse} {part} (MeSH)",
            bookkeeping=True,
            key=key,
        )
        for browse in ("conditionBrowse", "interventionBrowse")
        for part, key in (("meshes", "id"), ("ancestors", "id"), ("browseLeaves", "id"), ("browseBranches", "abbrev"))
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


def catalog_table() -> str:
    """The catalog as a markdown table, for docs/explanation/fields.md."""
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
