"""The hospital's PACS over DICOMweb: find a patient's studies, import their chest films, and
send a film's reading back as a DICOM SR.

The PACS is a setting (``PACS_URL``, ``PACS_USERNAME``, ``PACS_PASSWORD``, ``PACS_NAME``);
``dicomweb-client`` speaks to it.

**Pulling films (the patient themself).** :func:`search_pacs` finds the studies of one
Patient ID in a date range (QIDO-RS: studies, then their series and instances) and lists them
as a CD is listed (``core.dicom_media``: studies, series, the chest radiograph series ticked,
what is left out said in one sentence per kind), with "is this you?" doubts from the headers
(``services.media.identity_doubts``) and the films already in the record (by SOP Instance
UID). :func:`import_from_pacs` retrieves the chosen series one film at a time (WADO-RS) into
the patient's record through ``services.imports.import_scans``: dates and views from the
headers, nothing stored twice, each film read as every page reads it. Both are audited.

The app's PACS account can read every patient's films, so a patient may search only by a
Patient ID that films already in their record carry (a CD they imported, a film they
uploaded): the hospital wrote it, not the patient; wildcards are refused.

**Adding films for a patient (a clinician).** A clinician whose active grant from the patient
carries the patient's consent to add films (``storage.policy.check_add_films``) searches by
the hospital's Patient ID (exact, no wildcard) and imports the chosen series into the
patient's record (``patient=`` of :func:`search_pacs`): the films are the patient's (their
key, quota and upload rate), the audit trail names the clinician, and the patient's access
list says "drx added 3 films from St Mary's PACS".

**Sending a reading (a clinician).** :func:`send_srs` makes the SR of each chosen DICOM film
(``services.dicom_sr``) and stores it in the PACS (STOW-RS), where it joins the film's study;
only a clinician who can read the patient's records may, and each sending is audited.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeVar

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_user_pass

from core.dicom_header import (
    RADIOGRAPH_MODALITIES,
    body_part_out_of_scope,
    dicom_age,
    dicom_date,
    dicom_text,
    dicom_view,
    document_kind,
    documents_phrase,
    mentions_chest,
    other_modality_kind,
)
from core.dicom_media import MediaInstance, MediaListing, MediaPatient, MediaSeries, MediaStudy
from core.errors import UserError
from core.settings import Settings
from core.views import View
from core.words import plural
from services.dicom_refs import dicom_refs
from services.dicom_sr import SrExport, patient_srs
from services.imports import ImportedScan, ImportProgress, ImportReport, ScanFile, import_scans
from services.media import IdentityNotConfirmed, identity_doubts
from storage import audit, policy, schema
from storage.actor import Actor
from storage.db import Database
from storage.profile import get_birth_year
from storage.scans import list_scans

if TYPE_CHECKING:  # importing the model layer loads torch; callers hand in a loaded classifier
    from models.inference import Classifier

#: What the listing asks the PACS for, level by level (QIDO-RS ``includefield``).
_STUDY_FIELDS = ("StudyDate", "StudyDescription", "PatientName", "PatientBirthDate", "PatientSex")
_SERIES_FIELDS = (
    "Modality",
    "BodyPartExamined",
    "SeriesDescription",
    "SeriesNumber",
    "SeriesDate",
    "ProtocolName",
    "Laterality",
)
_INSTANCE_FIELDS = (
    "InstanceNumber",
    "ViewPosition",
    "PatientOrientation",
    "PatientPosition",
    "NumberOfFrames",
    "Rows",
    "Columns",
    "SOPClassUID",
    "PatientAge",
    "ImageLaterality",
)
#: A Patient ID holds no QIDO wildcard nor a list (PS3.18 8.3.4.6).
_PATIENT_ID = re.compile(r"[^*?\\,]{1,64}")

T = TypeVar("T")


class PacsNotConfigured(UserError):
    """No PACS is connected to the app."""

    code = "pacs_not_configured"
    default_message = "No hospital PACS is connected to this app."


class PacsUnavailable(UserError):
    """The PACS did not answer, or refused; ``str(err)`` says which, in one sentence."""

    code = "pacs_unavailable"
    default_message = "The hospital's PACS could not be reached; please try again later."


class PatientIdNotYours(UserError):
    """A Patient ID that no film in the patient's record carries."""

    code = "pacs_patient_id_not_yours"
    default_message = (
        "You can search the hospital's PACS only by the Patient ID your own hospital films "
        "carry; import one of your films (a CD or a download) first."
    )


class PatientIdInvalid(UserError):
    """A Patient ID with a wildcard or a list in it, or none (a clinician's search)."""

    code = "pacs_patient_id_invalid"
    default_message = (
        "Type the patient's hospital Patient ID exactly: it is matched as written, without "
        "*, ?, \\ or commas."
    )


@dataclass(frozen=True)
class Pacs:
    """How to reach the PACS.

    Attributes:
        url: Its DICOMweb base URL.
        name: What it is called for people ("St Mary's PACS").
        username: The app's PACS account, or None.
        password: Its password.
    """

    url: str
    name: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Pacs:
        """The PACS of ``PACS_URL`` and its credentials.

        Raises:
            PacsNotConfigured: ``PACS_URL`` is not set.
        """
        if settings.pacs_url is None:
            raise PacsNotConfigured()
        return cls(
            settings.pacs_url, settings.pacs_name, settings.pacs_username, settings.pacs_password
        )

    def client(self) -> DICOMwebClient:
        """A DICOMweb client for it (a few quick retries when the PACS is busy)."""
        session = (
            create_session_from_user_pass(self.username, self.password or "")
            if self.username
            else requests.Session()
        )
        client = DICOMwebClient(self.url, session=session, timeout=(5, 60))
        client.set_http_retry_params(
            retry=True,
            max_attempts=3,
            wait_exponential_multiplier=200,
            retriable_error_codes=(
                HTTPStatus.TOO_MANY_REQUESTS,
                HTTPStatus.SERVICE_UNAVAILABLE,
                HTTPStatus.GATEWAY_TIMEOUT,
            ),
        )
        return client


def _talk(pacs: Pacs, call: Callable[[], T]) -> T:
    """Run one exchange with the PACS; its failures become one sentence."""
    try:
        return call()
    except requests.HTTPError as err:
        status = err.response.status_code if err.response is not None else None
        if status in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
            raise PacsUnavailable(
                f"{_capital(pacs.name)} refused the app's credentials; ask the administrator "
                "to check PACS_USERNAME and PACS_PASSWORD."
            ) from err
        raise PacsUnavailable(
            f"{_capital(pacs.name)} answered with an error ({status}); please try again later."
        ) from err
    except (requests.ConnectionError, requests.Timeout) as err:
        raise PacsUnavailable(
            f"{_capital(pacs.name)} could not be reached; please try again later."
        ) from err


def _capital(name: str) -> str:
    return name[:1].upper() + name[1:]


# --------------------------------------------------------------------------- listing


@dataclass(frozen=True)
class PacsCheck:
    """A patient's studies on the PACS as listed to them, before anything is imported.

    Attributes:
        pacs: What the PACS is called.
        patient_id: The Patient ID searched.
        listing: Its studies and series as a CD's are listed (``core.dicom_media``);
            ``kind`` is ``"pacs"``.
        doubts: Why the films may be of someone else (``services.media.identity_doubts``).
        names: The patient names the PACS gives, only to ask "is this you?"; never stored.
        known: SOP Instance UID -> scan id of the films already in the record.
        record: Whose record the films go to (the app's user id of the patient).
    """

    pacs: str
    patient_id: str
    listing: MediaListing
    doubts: tuple[str, ...]
    names: tuple[str, ...]
    known: Mapping[str, int]
    record: int | None = None

    @property
    def needs_confirmation(self) -> bool:
        """Whether the patient must say the films are theirs before importing."""
        return bool(self.doubts)

    def new_films(self, series: MediaSeries) -> int:
        """How many films of ``series`` are not yet in the record."""
        return sum(i.sop_instance_uid not in self.known for i in series.instances)


def record_patient_ids(db: Database, actor: Actor) -> tuple[str, ...]:
    """The hospital Patient IDs the patient's own DICOM films carry (what they may search)."""
    refs = dicom_refs(db, actor, list_scans(db, actor, actor.user_id))
    return tuple(sorted({ref.patient_id for ref in refs.values() if ref.patient_id}))


def search_pacs(
    db: Database,
    actor: Actor,
    pacs: Pacs,
    patient_id: str,
    date_from: date | None = None,
    date_to: date | None = None,
    *,
    patient: int | None = None,
) -> PacsCheck:
    """Find one patient's studies on the PACS in a date range, listed as a CD is (audited).

    Args:
        db: Database handle.
        actor: The patient, or a clinician the patient allowed to add films.
        pacs: The PACS.
        patient_id: The hospital's Patient ID: for a patient, one that films in the record
            carry; for a clinician, the one the hospital gave the patient (exact).
        date_from: The earliest Study Date, or None.
        date_to: The latest Study Date, or None.
        patient: For a clinician, whose record (the app's user id); None for the patient.

    Returns:
        The listing, doubts about whose films they are, and the films already in the record.

    Raises:
        PatientIdNotYours: (A patient) No film of the record carries this Patient ID, or it
            holds a wildcard.
        PatientIdInvalid: (A clinician) The Patient ID is empty or holds a wildcard.
        PacsUnavailable: The PACS did not answer or refused.
        ValueError: ``date_from`` is after ``date_to``.
        storage.policy.AccessDenied: The actor is not an active patient searching for
            themself, nor a clinician the patient allowed to add films.
    """
    owner = _record_owner(db, actor, patient)
    if date_from and date_to and date_from > date_to:
        raise ValueError("The first date of the range is after the last.")
    patient_id = patient_id.strip()
    scans = list_scans(db, actor, owner)
    refs = dicom_refs(db, actor, scans)
    if not _PATIENT_ID.fullmatch(patient_id):
        raise PatientIdNotYours() if owner == actor.user_id else PatientIdInvalid()
    if owner == actor.user_id and patient_id not in {ref.patient_id for ref in refs.values()}:
        raise PatientIdNotYours()
    client = pacs.client()
    listing = _talk(pacs, lambda: list_studies(client, patient_id, date_from, date_to))
    birth_year = get_birth_year(db, actor, owner)
    _audit(
        db,
        actor,
        "pacs_search",
        {"pacs": pacs.name, "studies": len(listing.studies)},
        patient_id=owner,
    )
    return PacsCheck(
        pacs=pacs.name,
        patient_id=patient_id,
        listing=listing,
        doubts=identity_doubts(listing.series, birth_year),
        names=tuple(
            sorted({one.patient.name for one in listing.series if one.patient.name is not None})
        ),
        known={ref.sop_instance_uid: scan_id for scan_id, ref in refs.items()},
        record=owner,
    )


def _record_owner(db: Database, actor: Actor, patient: int | None) -> int:
    """Whose record a PACS pull fills: the patient's own, or one a clinician may add films to.

    Raises:
        storage.policy.AccessDenied: Neither applies.
    """
    if patient is None or (actor.role == schema.Role.PATIENT.value and patient == actor.user_id):
        policy.require_role(actor, schema.Role.PATIENT)
        return actor.user_id
    policy.require_role(actor, schema.Role.CLINICIAN)
    with db.transaction() as session:
        policy.check_add_films(session, actor, patient)
    return patient


def _date_range(date_from: date | None, date_to: date | None) -> str | None:
    if date_from is None and date_to is None:
        return None
    start = date_from.strftime("%Y%m%d") if date_from else ""
    end = date_to.strftime("%Y%m%d") if date_to else ""
    return f"{start}-{end}"


def _dataset(item: Mapping[str, Any]) -> pydicom.Dataset:
    # Bulk data never comes with a QIDO answer; a handler refuses to fetch any.
    return pydicom.Dataset.from_json(dict(item), bulk_data_uri_handler=lambda *_: b"")


def list_studies(
    client: DICOMwebClient,
    patient_id: str,
    date_from: date | None = None,
    date_to: date | None = None,
) -> MediaListing:
    """List one Patient ID's studies on a PACS as a CD's are listed (QIDO-RS).

    Args:
        client: The PACS's DICOMweb client.
        patient_id: The Patient ID, matched exactly.
        date_from: The earliest Study Date, or None.
        date_to: The latest Study Date, or None.

    Returns:
        The studies with at least one importable series, oldest first, each series with its
        films (instances, by Instance Number), the chest radiograph series pre-selected, and
        one sentence per kind of series left out.
    """
    filters: dict[str, Any] = {"PatientID": patient_id}
    if (dates := _date_range(date_from, date_to)) is not None:
        filters["StudyDate"] = dates
    studies = client.search_for_studies(
        search_filters=filters, fields=list(_STUDY_FIELDS), get_remaining=True
    )
    listed, left_out = [], _LeftOut()
    for study_json in studies:
        study = _dataset(study_json)
        study_uid = dicom_text(study, "StudyInstanceUID")
        if study_uid is None or dicom_text(study, "PatientID") != patient_id:
            continue
        members = []
        for series_json in client.search_for_series(
            study_uid, fields=list(_SERIES_FIELDS), get_remaining=True
        ):
            series = _dataset(series_json)
            one = _series(client, study, series, left_out)
            if one is not None:
                members.append(one)
        if members:
            members.sort(key=lambda s: (s.number is None, s.number or 0, s.uid))
            listed.append(
                MediaStudy(
                    uid=study_uid,
                    date=dicom_date(study.get("StudyDate")),
                    description=dicom_text(study, "StudyDescription"),
                    series=tuple(members),
                )
            )
    listed.sort(key=lambda s: (s.date is None, s.date or date.min, s.uid))
    return MediaListing(
        kind="pacs", dicomdir=False, studies=tuple(listed), skipped=left_out.sentences()
    )


@dataclass
class _LeftOut:
    documents: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    other_kinds: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    other_parts: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    no_image: int = 0

    def sentences(self) -> tuple[str, ...]:
        out = [
            f"Left out {documents_phrase(code, n)}." for code, n in sorted(self.documents.items())
        ]
        out += [
            f"Left out {plural(n, 'series', 'series')} of {kind}: the app reads chest X-rays only."
            for kind, n in sorted(self.other_kinds.items())
        ]
        for part, n in sorted(self.other_parts.items()):
            verb = "shows" if n == 1 else "show"
            out.append(
                f"Left out {plural(n, 'series', 'series')} that {verb} {part}, not the chest."
            )
        if self.no_image:
            out.append(f"Left out {plural(self.no_image, 'object')} without an image.")
        return tuple(out)


def _series(
    client: DICOMwebClient, study: pydicom.Dataset, series: pydicom.Dataset, left_out: _LeftOut
) -> MediaSeries | None:
    series_uid = dicom_text(series, "SeriesInstanceUID")
    study_uid = dicom_text(study, "StudyInstanceUID")
    if series_uid is None or study_uid is None:
        return None
    document = document_kind(series)
    if document is not None:
        left_out.documents[document.code] += 1
        return None
    modality = dicom_text(series, "Modality")
    other_kind = other_modality_kind(modality)
    if other_kind is not None:
        left_out.other_kinds[other_kind] += 1
        return None
    body_part = dicom_text(series, "BodyPartExamined")
    part = body_part_out_of_scope(body_part)
    if part is not None:
        left_out.other_parts[part.what] += 1
        return None
    instances, first = [], None
    for item in client.search_for_instances(
        study_uid, series_uid, fields=list(_INSTANCE_FIELDS), get_remaining=True
    ):
        header = _dataset(item)
        if document_kind(header) is not None or not (
            _integer(header.get("Rows")) and _integer(header.get("Columns"))
        ):
            left_out.no_image += 1
            continue
        first = first or header
        instances.append(
            MediaInstance(
                location=f"{study_uid}/{series_uid}/{dicom_text(header, 'SOPInstanceUID')}",
                size=0,
                sop_instance_uid=dicom_text(header, "SOPInstanceUID"),
                instance_number=_integer(header.get("InstanceNumber")),
                view=dicom_view(_merged(series, header)),
                frames=_integer(header.get("NumberOfFrames")) or 1,
            )
        )
    if not instances or first is None:
        return None
    descriptions = [
        dicom_text(series, keyword) for keyword in ("SeriesDescription", "ProtocolName")
    ] + [dicom_text(study, "StudyDescription")]
    return MediaSeries(
        uid=series_uid,
        study_uid=study_uid,
        number=_integer(series.get("SeriesNumber")),
        date=dicom_date(series.get("SeriesDate")) or dicom_date(study.get("StudyDate")),
        description=descriptions[0],
        modality=modality,
        body_part=body_part,
        laterality=dicom_text(first, "ImageLaterality") or dicom_text(series, "Laterality"),
        patient=_patient(study, first),
        instances=tuple(
            sorted(
                instances,
                key=lambda i: (i.instance_number is None, i.instance_number or 0, i.location),
            )
        ),
        preselected=(modality is None or modality.upper() in RADIOGRAPH_MODALITIES)
        and mentions_chest(body_part, *descriptions),
    )


def _merged(series: pydicom.Dataset, instance: pydicom.Dataset) -> pydicom.Dataset:
    # The view reads descriptions (series and study level) with the instance's own attributes.
    merged = pydicom.Dataset()
    merged.update(series)
    merged.update(instance)
    return merged


def _patient(study: pydicom.Dataset, instance: pydicom.Dataset) -> MediaPatient:
    name = study.get("PatientName")
    words = [] if not name else [name.given_name, name.middle_name, name.family_name]
    text = " ".join(word.strip() for word in words if word and word.strip())
    return MediaPatient(
        patient_id=dicom_text(study, "PatientID"),
        name=text if text and len(text) <= 3 * 64 and text.isprintable() else None,
        birth_date=dicom_date(study.get("PatientBirthDate")),
        age=dicom_age(instance.get("PatientAge")),
        sex=dicom_text(study, "PatientSex"),
    )


def _integer(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


# --------------------------------------------------------------------------- importing


def import_from_pacs(
    db: Database,
    actor: Actor,
    pacs: Pacs,
    check: PacsCheck,
    chosen: Sequence[MediaSeries],
    classifier: Classifier | None,
    *,
    identity_confirmed: bool = False,
    on_progress: ImportProgress | None = None,
) -> ImportReport:
    """Retrieve the chosen series' films (WADO-RS) into the patient's record, one at a time.

    Films already in the record (same SOP Instance UID) are not retrieved again; the others go
    through ``services.imports.import_scans`` with the dates and views of their headers (a
    film whose header states no view is kept as "not known", never scored).

    Args:
        db: Database handle.
        actor: Who searched (:func:`search_pacs`): the patient, or a clinician the patient
            allowed to add films (checked again for every film).
        pacs: The PACS.
        check: What :func:`search_pacs` listed.
        chosen: Series of that listing.
        classifier: The current model, or None.
        identity_confirmed: The patient (or the clinician) confirmed the films are the
            patient's (needed when the chosen series raise a doubt).
        on_progress: Called after each film.

    Returns:
        One outcome per film of the chosen series: the films already in the record first
        (``already_saved``), then those retrieved, in listing order.

    Raises:
        IdentityNotConfirmed: The chosen series raise a doubt and it was not confirmed.
        PacsUnavailable: The PACS stopped answering (films already saved stay saved).
        ValueError: A series is not of this listing.
        storage.policy.AccessDenied: The actor may not add films to this record.
    """
    owner = _record_owner(db, actor, check.record)
    listed = {one.uid for one in check.listing.series}
    if any(one.uid not in listed for one in chosen):
        raise ValueError("Choose series from the PACS listing.")
    birth_year = get_birth_year(db, actor, owner)
    if identity_doubts(chosen, birth_year) and not identity_confirmed:
        raise IdentityNotConfirmed()
    whose = "your" if owner == actor.user_id else "the patient's"
    known, wanted = [], []
    for series in chosen:
        for instance in series.instances:
            uid = instance.sop_instance_uid
            if uid is not None and uid in check.known:
                scan_id = check.known[uid]
                known.append(
                    ImportedScan(
                        _filename(instance),
                        scan_id,
                        notes=(f"This film is already in {whose} record (scan {scan_id}).",),
                        already_saved=True,
                    )
                )
            else:
                wanted.append((series, instance))
    client = pacs.client()

    def files() -> Iterator[ScanFile]:
        for series, instance in wanted:
            yield ScanFile(
                _filename(instance),
                _retriever(pacs, client, series, instance),
                instance.view or View.UNKNOWN,
            )

    report = import_scans(
        db,
        actor,
        files(),
        classifier,
        total=len(wanted),
        on_progress=on_progress,
        patient_id=owner,
    )
    saved = sum(item.ok and not item.already_saved for item in report.items)
    _audit(
        db,
        actor,
        "pacs_import",
        {
            "pacs": pacs.name,
            "films": saved,
            "not_saved": len(wanted) - saved,
            "already_in_record": len(known),
        },
        patient_id=owner,
    )
    return ImportReport(tuple(known) + report.items)


def _filename(instance: MediaInstance) -> str:
    return f"{instance.sop_instance_uid or 'film'}.dcm"


def _retriever(
    pacs: Pacs, client: DICOMwebClient, series: MediaSeries, instance: MediaInstance
) -> Callable[[], bytes]:
    def read() -> bytes:
        uid = instance.sop_instance_uid
        if uid is None:
            raise OSError("The PACS listed this film without its identifier.")
        dataset = _talk(pacs, lambda: client.retrieve_instance(series.study_uid, series.uid, uid))
        buffer = io.BytesIO()
        pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
        return buffer.getvalue()

    return read


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class SentSrs:
    """What :func:`send_srs` sent.

    Attributes:
        pacs: What the PACS is called.
        export: The SRs made (``services.dicom_sr``) and the scans left out with why.
        stored: SOP Instance UIDs the PACS stored.
        failed: SOP Instance UIDs the PACS refused.
    """

    pacs: str
    export: SrExport
    stored: tuple[str, ...]
    failed: tuple[str, ...]

    @property
    def reports_stored(self) -> int:
        """How many of the SRs the PACS stored (the rest of :attr:`stored` are heatmaps)."""
        reports = {str(item.dataset.SOPInstanceUID) for item in self.export.files}
        return len(reports.intersection(self.stored))

    @property
    def summary(self) -> str:
        """One sentence, e.g. ``"2 reports with 1 heatmap were sent to St Mary's PACS."``."""
        reports = self.reports_stored
        heatmaps = len(self.stored) - reports
        sent = plural(reports, "report")
        if heatmaps:
            sent += f" with {plural(heatmaps, 'heatmap')}"
        verb = "was" if reports == 1 else "were"
        sentence = f"{sent} {verb} sent to {self.pacs}"
        if self.failed:
            sentence += f"; it refused {len(self.failed)}"
        if self.export.skipped:
            sentence += f"; {plural(len(self.export.skipped), 'film')} had none to send"
        return sentence + "."


def send_srs(
    db: Database,
    actor: Actor,
    pacs: Pacs,
    patient_id: int,
    classifier: Classifier | None,
    *,
    scan_ids: Sequence[int] | None = None,
) -> SentSrs:
    """Store the SR of each chosen DICOM film of a patient in the PACS (STOW-RS), audited.

    Args:
        db: Database handle.
        actor: A clinician who can read the patient's records (a grant or emergency access).
        pacs: The PACS.
        patient_id: Whose films.
        classifier: The current model (its version picks the result read), or None.
        scan_ids: The films (default: every DICOM film the clinician may read).

    Returns:
        What was sent, and what the PACS refused.

    Raises:
        storage.policy.AccessDenied: The actor is not a clinician, or cannot read these records.
        PacsUnavailable: The PACS did not answer or refused.
    """
    policy.require_role(actor, schema.Role.CLINICIAN)
    export = patient_srs(db, actor, patient_id, classifier, scan_ids=scan_ids)
    stored: list[str] = []
    failed: list[str] = []
    if export.files:
        client = pacs.client()
        # Read back from their bytes: what is sent is exactly what a download holds.
        datasets = [
            pydicom.dcmread(io.BytesIO(data)) for item in export.files for _, data in item.files()
        ]
        answer = _talk(pacs, lambda: client.store_instances(datasets))
        stored = [
            str(item.ReferencedSOPInstanceUID) for item in answer.get("ReferencedSOPSequence", [])
        ]
        failed = [
            str(item.ReferencedSOPInstanceUID) for item in answer.get("FailedSOPSequence", [])
        ]
    _audit(
        db,
        actor,
        "pacs_send_sr",
        {
            "pacs": pacs.name,
            "instances": len(stored),
            "refused": len(failed),
        },
        patient_id=patient_id,
    )
    return SentSrs(pacs.name, export, tuple(stored), tuple(failed))


def _audit(
    db: Database,
    actor: Actor,
    action: str,
    details: dict[str, object],
    *,
    patient_id: int | None = None,
) -> None:
    """Record an exchange with the PACS in the audit trail (the actor's access checked again)."""
    patient_id = actor.user_id if patient_id is None else patient_id
    with db.transaction() as session:
        access = policy.check_read(session, actor, patient_id)
        audit.append(
            session,
            db,
            action,
            actor=actor,
            patient_id=patient_id,
            emergency=access.emergency,
            details={**details, **access.audit_details()},
        )
