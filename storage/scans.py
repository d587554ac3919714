"""Scans: a patient's radiographs with their results, sealed with the patient's data key.

The pixels live in an encrypted blob file, at a working resolution and as a lossless 16-bit
PNG (:mod:`storage.pixels`); everything else is in the scan's sealed payload.
Every function takes the acting user and applies :mod:`storage.policy` before touching data,
and appends an audit event in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlmodel import Session, select

from core.errors import UserError
from core.labels import format_day, scan_label
from core.localtime import to_local
from core.views import View
from storage import audit, blob_bytes, contents, crypto, originals, policy, rate, schema
from storage.actor import Actor
from storage.db import CommitUnconfirmed, Database, retry_when_busy
from storage.pixels import decode_pixels, encode_pixels, quantise, to_working_resolution
from storage.results import ResultIn, ResultRecord, insert_result, results_by_scan
from storage.sealing import RowSealer

_TABLE = "scans"
_BLOB = "blob"
#: The rate-event kind of a stored scan (see :mod:`storage.rate`).
_UPLOAD = "upload"


class StorageQuotaExceeded(UserError):
    """Storing the scan would take the patient past ``Settings.user_quota_bytes``."""

    code = "quota_exceeded"
    default_message = "Your storage is full; delete some older scans before uploading another one."


class UploadRateExceeded(UserError):
    """The patient already stored ``Settings.uploads_per_hour`` scans in the last hour."""

    code = "upload_rate"
    default_message = "You have uploaded as many scans as allowed for now; try again in an hour."


class SaveUnconfirmed(CommitUnconfirmed):
    """The connection failed while the scan was being committed: it may or may not be stored."""

    code = "save_unconfirmed"
    default_message = (
        "The connection failed just as your scan was being saved; look for it in your scans "
        "before uploading it again."
    )


class NoOriginalKept(UserError, LookupError):
    """The patient did not ask to keep the uploaded file of this scan."""

    code = "no_original"
    default_message = (
        "The original file of this scan was not kept: keeping it is chosen when uploading."
    )


@dataclass(frozen=True)
class OriginalFile:
    """An uploaded file kept as it was (see :func:`load_original`)."""

    filename: str
    data: bytes


class RecordNotFound(UserError, LookupError):
    """The scan or record does not exist (one plain sentence)."""

    code = "not_found"
    default_message = "This record does not exist."


@dataclass(frozen=True)
class SavedCopy:
    """A scan already saved from a given file.

    Attributes:
        scan_id: The stored scan.
        scan_date: The date of its X-ray.
        view: Its projection as saved.
        saved_at: When it was saved (UTC).
    """

    scan_id: int
    scan_date: date
    view: View
    saved_at: datetime

    def sentence(self, zone: str | None = None) -> str:
        """E.g. ``"Already in your record: the X-ray of 5 Jan 2026, side (lateral), saved on
        22 Nov 2026."``, the saving day in the reader's IANA ``zone`` (UTC when unknown)."""
        saved = format_day(to_local(self.saved_at, zone).date())
        return f"Already in your record: the X-ray of {scan_label(self)}, saved on {saved}."


class AlreadySaved(UserError):
    """The patient saved a scan from the very same file before; nothing was stored again."""

    code = "already_saved"
    default_message = "This file is already in your record."

    def __init__(self, copy: SavedCopy) -> None:
        super().__init__(copy.sentence())
        self.copy = copy


@dataclass(frozen=True)
class ScanSummary:
    """A scan without its pixels, with its results oldest first.

    ``view`` is the film's projection; scans stored before views were recorded read as
    ``View.UNKNOWN`` until their owner sets it.
    """

    id: int
    owner_id: int
    scan_date: date
    filename: str
    modality: str | None
    results: list[ResultRecord]
    created_at: datetime
    view: View = View.UNKNOWN
    #: The view check's warning when the film did not look like the frontal view it was
    #: saved with and the patient confirmed that view (``core.view_check``); None otherwise.
    view_doubt: str | None = None

    @property
    def latest_result(self) -> ResultRecord | None:
        """The most recent result, if any."""
        return self.results[-1] if self.results else None


@dataclass(frozen=True, kw_only=True)
class ScanRecord(ScanSummary):
    """A scan with its pixels (float32, (H, W), [0, 1]), metadata and enhancement settings."""

    pixels: np.ndarray
    metadata: dict[str, Any]
    enhancement: dict[str, Any]


@retry_when_busy
def save_scan(
    db: Database,
    actor: Actor,
    *,
    pixels: np.ndarray,
    metadata: dict[str, Any],
    enhancement: dict[str, Any],
    scan_date: date,
    filename: str,
    view: View = View.UNKNOWN,
    view_doubt: str | None = None,
    result: ResultIn | None = None,
    content: bytes | None = None,
    keep_original: bool = False,
    patient_id: int | None = None,
) -> int:
    """Store a scan in a patient's record (pixels in an encrypted blob), optionally its result.

    The patient stores their own; a clinician stores one for a patient who allowed them to
    add films on an active grant (:func:`storage.policy.check_add_films`): the scan is the
    patient's (their data key, their quota and upload rate) and the audit trail names the
    clinician. A scan added under a grant of selected scans joins that grant, so the
    clinician can read what they added.

    The image is kept at the working resolution (see :mod:`storage.pixels`): one whose long
    side exceeds 2048 pixels is downscaled first, and the stored metadata then describes the
    stored image, with the original size and the scale beside it.

    Args:
        db: Database handle.
        actor: The patient, or a clinician adding a film for them.
        pixels: Image, (H, W) float in [0, 1].
        metadata: JSON-safe scan metadata (``ScanMetadata.to_dict()``).
        enhancement: JSON-safe enhancement settings used.
        scan_date: When the radiograph was taken.
        filename: Original file name (kept encrypted).
        view: The film's projection (kept encrypted with the date and file name). Unknown
            unless given: such a scan is never scored nor compared. Uploads always give it
            (``services.imports.save_decoded_scan`` requires it).
        result: Classification to store with it.
        content: The bytes of the file the scan was decoded from: a keyed hash of them is
            kept, so the same file is recognised when it is saved again (None: not kept).
        keep_original: Also keep ``content`` itself, sealed, beside the working-resolution
            image (:mod:`storage.originals`); it counts to the quota.
        patient_id: Whose record (default: the actor's own).

    Returns:
        The new scan id.

    Raises:
        policy.AccessDenied: The actor is not an active patient storing their own scan, nor
            a clinician the patient allowed to add films.
        AlreadySaved: The patient already saved a scan from the same file; nothing is stored.
        UploadRateExceeded: The patient stored ``Settings.uploads_per_hour`` scans in the
            last hour (deleted ones included).
        StorageQuotaExceeded: The new image would take the patient's stored images past
            ``Settings.user_quota_bytes``.
        ValueError: ``pixels`` is not a 2-D image.
    """
    image = np.asarray(pixels, dtype=np.float32)
    if image.ndim != 2 or image.size == 0:
        raise ValueError("The image must be a non-empty 2-D array.")
    image, metadata = to_working_resolution(image, metadata)
    # Quantised first, so that the sealed intensity statistics describe the stored pixels.
    image = quantise(image)
    encoded = encode_pixels(image)
    owner = actor.user_id if patient_id is None else patient_id
    blob_name = db.blobs.new_name()
    written = committing = False
    kept: list[str] = []
    try:
        with db.transaction() as session:
            access = policy.check_add_films(session, actor, owner)
            _lock_user(session, owner)
            sealer = db.keyring.sealer(session, owner, for_update=True)
            # Checked under the user's lock, so a double click cannot store the file twice.
            if content is not None and (copy := contents.find_copy(session, sealer, content)):
                raise AlreadySaved(_saved_copy(session, sealer, *copy))
            _check_upload_rate(session, db, owner, own=access.via == "owner")
            # Sized 0 until its blob is sealed: the quota check counts it as ``new_bytes``.
            scan = schema.Scan(
                owner_id=owner,
                key_version=sealer.version,
                blob_name=blob_name,
                blob_bytes=0,
            )
            session.add(scan)
            session.flush()
            scan_id = schema.stored_id(scan.id)
            _seal_payload(
                sealer,
                scan,
                {
                    "scan_date": scan_date.isoformat(),
                    "filename": filename,
                    "view": View(view).value,
                    "view_doubt": view_doubt,
                    "modality": metadata.get("modality"),
                    "metadata": metadata,
                    "enhancement": enhancement,
                    **_intensity_stats(image),
                },
            )
            session.add(scan)
            sealed = sealer.seal(_BLOB, scan_id, scan.key_version, encoded)
            original = None
            if keep_original and content is not None:
                original = originals.seal(sealer, scan_id, content)
            _check_quota(
                session, db, owner, len(sealed) + len(original or b""), own=access.via == "owner"
            )
            scan.blob_bytes = len(sealed)
            db.blobs.write(blob_name, sealed)
            written = True
            if original is not None:
                kept.append(originals.keep(session, db, scan, original))
            rate.record(session, _UPLOAD, str(owner))
            if content is not None:
                contents.record(session, sealer, scan_id, content)
            if result is not None:
                insert_result(session, sealer, scan, result)
            _join_partial_grant(session, access, scan_id)
            details: dict[str, object] = {"with_result": result is not None}
            if access.via != "owner":
                details.update(access.audit_details())
            audit.append(
                session,
                db,
                "create_scan",
                actor=actor,
                patient_id=owner,
                record_type="scans",
                record_id=scan_id,
                details=details,
            )
            # Past this line the commit may have happened whatever is raised, so the blob
            # stays (at worst an orphan the sweep sets aside, never a scan without image).
            committing = True
    except CommitUnconfirmed as exc:
        raise SaveUnconfirmed() from exc
    except BaseException:
        if written and not committing:
            db.blobs.discard(blob_name)
        if not committing:
            for name in kept:
                db.blobs.discard(name)
        raise
    return scan_id


def _lock_user(session: Session, user_id: int) -> None:
    """Serialise one patient's uploads, so that two at once cannot both pass the limits.

    SQLite already runs one write transaction at a time; PostgreSQL locks the user's row.
    """
    session.exec(select(schema.User.id).where(schema.User.id == user_id).with_for_update()).one()


def _join_partial_grant(session: Session, access: policy.Access, scan_id: int) -> None:
    """A film added under a grant of selected scans is shared with its clinician too."""
    if access.via == "grant" and access.scan_ids is not None and access.grant_id is not None:
        session.add(schema.ShareGrantScan(grant_id=access.grant_id, scan_id=scan_id))
        session.flush()


def _check_upload_rate(session: Session, db: Database, user_id: int, *, own: bool = True) -> None:
    limit = db.settings.uploads_per_hour
    if rate.count(session, _UPLOAD, str(user_id)) >= limit:
        whose = "You have uploaded" if own else "This patient's record received"
        raise UploadRateExceeded(
            f"{whose} {limit} scans in the last hour, the most the app accepts; try again later."
        )


def _check_quota(
    session: Session, db: Database, user_id: int, new_bytes: int, *, own: bool = True
) -> None:
    used = blob_bytes.stored(session, db, schema.Scan, user_id)
    used += blob_bytes.stored(session, db, schema.ScanOriginal, user_id)
    quota = db.settings.user_quota_bytes
    if used + new_bytes > quota:
        whose = "Your" if own else "This patient's"
        raise StorageQuotaExceeded(
            f"{whose} scans already take {_megabytes(used)} of the {_megabytes(quota)} each "
            "account may keep; delete some older scans before uploading another one."
        )


def _megabytes(num_bytes: int) -> str:
    return f"{num_bytes / (1024 * 1024):.0f} MB"


def list_scans(
    db: Database, actor: Actor, patient_id: int, *, viewing: str | None = None
) -> list[ScanSummary]:
    """A patient's scans (those the actor may read), oldest scan date first.

    Loads every scan and result of the patient with two queries and one key unwrap.

    Args:
        db: Database handle.
        actor: The patient, or a clinician with a grant or emergency access.
        patient_id: Owner of the scans.
        viewing: The page visit or teleconsult reading them: audited once per viewing
            (:func:`storage.audit.append_read`); None audits every call.

    Returns:
        Summaries with their results oldest first.

    Raises:
        policy.AccessDenied: The actor may not read this patient's records.
        crypto.DecryptionError: A stored value fails its integrity check.
    """
    with db.transaction() as session:
        access = policy.check_read(session, actor, patient_id)
        summaries = _load_summaries(session, db, patient_id, access)
        audit.append_read(
            session,
            db,
            "list_scans",
            actor=actor,
            patient_id=patient_id,
            viewing=viewing,
            record_type="scans",
            emergency=access.emergency,
            details={**access.audit_details(), "count": len(summaries)},
        )
    return summaries


def load_scan(
    db: Database, actor: Actor, scan_id: int, *, viewing: str | None = None
) -> ScanRecord:
    """One scan with pixels, metadata, enhancement settings and results.

    ``viewing``: the page visit or teleconsult opening it, audited once per viewing and scan
    (:func:`storage.audit.append_read`); None audits every call.

    Raises:
        RecordNotFound: No such scan.
        policy.AccessDenied: The actor may not read it.
        crypto.DecryptionError: A stored value or the blob fails its integrity check.
    """
    with db.transaction() as session:
        scan = get_scan(session, scan_id)
        access = policy.check_read(session, actor, scan.owner_id, scan_id)
        sealer = db.keyring.sealer(session, scan.owner_id)
        payload = open_scan_payload(sealer, scan)
        row_id = schema.stored_id(scan.id)
        results = results_by_scan(session, sealer, [row_id]).get(row_id, [])
        pixels = _read_pixels(db, sealer, scan)
        audit.append_read(
            session,
            db,
            "read_scan",
            actor=actor,
            patient_id=scan.owner_id,
            viewing=viewing,
            record_type="scans",
            record_id=scan.id,
            emergency=access.emergency,
            details=access.audit_details(),
        )
    return ScanRecord(
        **_summary_fields(scan, payload, results),
        pixels=pixels,
        metadata=payload.get("metadata") or {},
        enhancement=payload.get("enhancement") or {},
    )


def list_scan_metadata(db: Database, actor: Actor, patient_id: int) -> dict[int, dict[str, Any]]:
    """Each scan's stored metadata (``ScanMetadata.to_dict()``), without pixels (audited once).

    What the exports that reference DICOM films need (their UIDs), for a whole record at the
    cost of opening the sealed payloads, never the images.

    Args:
        db: Database handle.
        actor: The patient, or a clinician with a grant or emergency access.
        patient_id: Owner of the scans.

    Returns:
        ``{scan id: metadata}`` of the scans the actor may read.

    Raises:
        policy.AccessDenied: The actor may not read this patient's records.
        crypto.DecryptionError: A stored value fails its integrity check.
    """
    with db.transaction() as session:
        access = policy.check_read(session, actor, patient_id)
        sealer = db.keyring.sealer(session, patient_id)
        found = {
            schema.stored_id(scan.id): open_scan_payload(sealer, scan).get("metadata") or {}
            for scan in session.exec(
                select(schema.Scan).where(schema.Scan.owner_id == patient_id)
            ).all()
            if access.covers(schema.stored_id(scan.id))
        }
        audit.append(
            session,
            db,
            "read_scan_metadata",
            actor=actor,
            patient_id=patient_id,
            record_type="scans",
            emergency=access.emergency,
            details={**access.audit_details(), "count": len(found)},
        )
    return found


def _own_scan(session: Session, actor: Actor, scan_id: int) -> schema.Scan:
    """The scan ``actor`` may change: missing scans raise before the access check."""
    scan = get_scan(session, scan_id)
    policy.check_write(session, actor, scan.owner_id)
    return scan


def _update_payload(
    db: Database, actor: Actor, scan_id: int, changes: dict[str, str | None], action: str
) -> None:
    """Change facts of one's own scan in its sealed payload, audited as ``action``."""
    with db.transaction() as session:
        scan = _own_scan(session, actor, scan_id)
        sealer = db.keyring.sealer(session, scan.owner_id, for_update=True)
        payload = open_scan_payload(sealer, scan)
        payload.update(changes)
        _seal_payload(sealer, scan, payload)
        session.add(scan)
        audit.append(
            session,
            db,
            action,
            actor=actor,
            patient_id=scan.owner_id,
            record_type="scans",
            record_id=scan.id,
        )


def update_scan_date(db: Database, actor: Actor, scan_id: int, scan_date: date) -> None:
    """Correct the date of one's own scan.

    Raises:
        RecordNotFound: No such scan.
        policy.AccessDenied: The actor is not the owning patient.
    """
    _update_payload(db, actor, scan_id, {"scan_date": scan_date.isoformat()}, "update_scan_date")


def update_scan_view(
    db: Database, actor: Actor, scan_id: int, view: View, view_doubt: str | None = None
) -> None:
    """Correct the view (projection) of one's own scan; its results are kept as they are.

    Args:
        db: Database handle.
        actor: The owning patient.
        scan_id: The scan.
        view: The view the patient chose.
        view_doubt: The view check's warning about that choice, which the patient confirmed
            (kept with the scan, see :class:`ScanSummary`); None when the check had none.

    Raises:
        RecordNotFound: No such scan.
        policy.AccessDenied: The actor is not the owning patient.
        ValueError: ``view`` names no view.
    """
    chosen = View(view)
    _update_payload(
        db,
        actor,
        scan_id,
        {"view": chosen.value, "view_doubt": view_doubt},
        "update_scan_view",
    )


def add_results(db: Database, actor: Actor, results: list[tuple[int, ResultIn]]) -> list[int]:
    """Store new classifications of one's own scans in one transaction (e.g. re-scoring).

    Args:
        db: Database handle.
        actor: The owning patient.
        results: ``(scan_id, result)`` pairs.

    Returns:
        The new result ids, in order.

    Raises:
        RecordNotFound: A scan does not exist.
        policy.AccessDenied: A scan is not the actor's.
        ValueError: A probability is not a finite number.
    """
    with db.transaction() as session:
        policy.check_write(session, actor, actor.user_id)
        sealer = db.keyring.sealer(session, actor.user_id, for_update=True)
        scans: dict[int, schema.Scan] = {}
        ids = []
        for scan_id, result in results:
            if scan_id not in scans:
                scans[scan_id] = get_scan(session, scan_id)
                policy.require_own_records(actor, scans[scan_id].owner_id)
            ids.append(insert_result(session, sealer, scans[scan_id], result))
        audit.append(
            session,
            db,
            "add_results",
            actor=actor,
            patient_id=actor.user_id,
            record_type="results",
            details={"count": len(ids)},
        )
    return ids


def delete_scan(db: Database, actor: Actor, scan_id: int) -> None:
    """Delete one's own scan with its results, notes and image file.

    Raises:
        RecordNotFound: No such scan.
        policy.AccessDenied: The actor is not the owning patient.
    """
    with db.transaction() as session:
        scan = _own_scan(session, actor, scan_id)
        db.keyring.records_deleted(session, scan.owner_id)
        for model in (schema.Note, schema.Result):
            for row in session.exec(select(model).where(model.scan_id == scan.id)).all():
                session.delete(row)
        session.flush()
        blob_names = [scan.blob_name]
        if (original := originals.of_scan(session, scan_id)) is not None:
            blob_names.append(original.blob_name)
            session.delete(original)
            session.flush()  # before the scan's row, whose deletion would cascade to it
        session.delete(scan)
        audit.append(
            session,
            db,
            "delete_scan",
            actor=actor,
            patient_id=actor.user_id,
            record_type="scans",
            record_id=scan_id,
        )
    # Removed only after the rows are committed: a crash in between leaves an unreadable
    # orphan ciphertext rather than a scan whose image is gone.
    for name in blob_names:
        db.blobs.delete(name)


def load_original(db: Database, actor: Actor, scan_id: int) -> OriginalFile:
    """The file a scan was uploaded from, when the patient asked to keep it.

    Raises:
        RecordNotFound: No such scan.
        policy.AccessDenied: The actor may not read it.
        NoOriginalKept: The patient did not ask to keep the file at upload.
        crypto.DecryptionError: The file is missing or fails its integrity check.
    """
    with db.transaction() as session:
        scan = get_scan(session, scan_id)
        access = policy.check_read(session, actor, scan.owner_id, scan_id)
        row = originals.of_scan(session, scan_id)
        if row is None:
            raise NoOriginalKept()
        sealer = db.keyring.sealer(session, scan.owner_id)
        filename = open_scan_payload(sealer, scan)["filename"]
        try:
            data = originals.open_kept(db, sealer, row)
        except FileNotFoundError as exc:
            raise crypto.DecryptionError("The original file of this scan is missing.") from exc
        audit.append(
            session,
            db,
            "read_original",
            actor=actor,
            patient_id=scan.owner_id,
            record_type="scans",
            record_id=scan_id,
            emergency=access.emergency,
            details=access.audit_details(),
        )
    return OriginalFile(filename, data)


def get_scan(session: Session, scan_id: int) -> schema.Scan:
    """A scan row (for storage modules only: no access check here).

    Raises:
        RecordNotFound: No such scan.
    """
    scan = session.get(schema.Scan, scan_id)
    if scan is None:
        raise RecordNotFound("This scan does not exist.")
    return scan


def open_scan_payload(sealer: RowSealer, scan: schema.Scan) -> dict[str, Any]:
    """A scan's decrypted payload (for storage modules only: no access check here).

    Args:
        sealer: The data keys of the scan's owner.
        scan: The scan row.

    Returns:
        ``scan_date``, ``filename``, ``view`` (absent before views were recorded),
        ``modality``, ``metadata``, ``enhancement`` and, for
        scans stored since they were added, ``intensity_mean`` and ``intensity_std``.

    Raises:
        crypto.DecryptionError: The payload fails its integrity check.
    """
    return sealer.open_json(_TABLE, schema.stored_id(scan.id), scan.key_version, scan.payload)


def _intensity_stats(pixels: np.ndarray) -> dict[str, float]:
    """Mean and standard deviation of an image's intensities, sealed with every scan.

    Kept in the scan's payload so that the data-shift monitor never has to decrypt images.

    Args:
        pixels: Image, (H, W) float in [0, 1].

    Returns:
        ``{"intensity_mean", "intensity_std"}``.
    """
    image = np.asarray(pixels, dtype=np.float64)
    return {"intensity_mean": float(image.mean()), "intensity_std": float(image.std())}


def scan_payload_with_intensity(
    session: Session, db: Database, sealer: RowSealer, scan: schema.Scan
) -> dict[str, Any]:
    """A stored scan's decrypted payload, with its intensity statistics added if it predates them.

    For storage modules only: no access check here, the caller applies the policy. A scan
    saved before the statistics were sealed has its image decrypted once; the statistics
    are then sealed into its payload, under a row lock so that a concurrent change to the
    payload (a corrected scan date) is not overwritten.

    Args:
        session: The caller's open session.
        db: Database handle.
        sealer: The data keys of the scan's owner.
        scan: The scan row.

    Returns:
        The payload (``scan_date``, ``metadata``, ... and ``intensity_mean``,
        ``intensity_std``).

    Raises:
        crypto.DecryptionError: The payload or the image fails its integrity check.
    """
    payload = open_scan_payload(sealer, scan)
    if "intensity_mean" in payload and "intensity_std" in payload:
        return payload
    scan = session.exec(
        select(schema.Scan)
        .where(schema.Scan.id == scan.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    payload = open_scan_payload(sealer, scan)
    payload.update(_intensity_stats(_read_pixels(db, sealer, scan)))
    _seal_payload(sealer, scan, payload)
    session.add(scan)
    return payload


def _seal_payload(sealer: RowSealer, scan: schema.Scan, payload: dict[str, Any]) -> None:
    scan.payload = sealer.seal_json(_TABLE, schema.stored_id(scan.id), scan.key_version, payload)


def _read_pixels(db: Database, sealer: RowSealer, scan: schema.Scan) -> np.ndarray:
    try:
        sealed = db.blobs.read(scan.blob_name)
    except FileNotFoundError as exc:
        raise crypto.DecryptionError("The image file of this scan is missing.") from exc
    return decode_pixels(sealer.open(_BLOB, schema.stored_id(scan.id), scan.key_version, sealed))


def _load_summaries(
    session: Session, db: Database, patient_id: int, access: policy.Access
) -> list[ScanSummary]:
    sealer = db.keyring.sealer(session, patient_id)
    scans = [
        s
        for s in session.exec(select(schema.Scan).where(schema.Scan.owner_id == patient_id)).all()
        if access.covers(schema.stored_id(s.id))
    ]
    results = results_by_scan(session, sealer, None)
    summaries = [
        ScanSummary(
            **_summary_fields(
                scan,
                open_scan_payload(sealer, scan),
                results.get(schema.stored_id(scan.id), []),
            )
        )
        for scan in scans
    ]
    summaries.sort(key=lambda s: (s.scan_date, s.id))
    return summaries


def _payload_view(payload: dict[str, Any]) -> View:
    # Scans sealed before views existed carry none: their view is not known.
    return View(payload.get("view") or View.UNKNOWN)


def _summary_fields(
    scan: schema.Scan, payload: dict[str, Any], results: list[ResultRecord]
) -> dict[str, Any]:
    return {
        "id": scan.id,
        "owner_id": scan.owner_id,
        "scan_date": date.fromisoformat(payload["scan_date"]),
        "filename": payload["filename"],
        "modality": payload.get("modality"),
        "results": results,
        "created_at": scan.created_at,
        "view": _payload_view(payload),
        "view_doubt": payload.get("view_doubt"),
    }


def find_saved_files(db: Database, actor: Actor, files: list[bytes]) -> dict[int, SavedCopy]:
    """Which of these files the patient has already saved (checked before offering to save).

    Args:
        db: Database handle.
        actor: The patient.
        files: The files' bytes.

    Returns:
        ``{position in files: the saved copy}`` for the files already in the record.

    Raises:
        policy.AccessDenied: The actor is not an active patient.
    """
    found: dict[int, SavedCopy] = {}
    with db.transaction() as session:
        policy.check_write(session, actor, actor.user_id)
        sealer = db.keyring.sealer(session, actor.user_id)
        for position, content in enumerate(files):
            if (copy := contents.find_copy(session, sealer, content)) is not None:
                found[position] = _saved_copy(session, sealer, *copy)
        audit.append(
            session,
            db,
            "find_saved_files",
            actor=actor,
            patient_id=actor.user_id,
            record_type="scans",
            details={"checked": len(files), "found": len(found)},
        )
    return found


def _saved_copy(session: Session, sealer: RowSealer, scan_id: int, saved_at: datetime) -> SavedCopy:
    payload = open_scan_payload(sealer, get_scan(session, scan_id))
    return SavedCopy(
        scan_id,
        date.fromisoformat(payload["scan_date"]),
        _payload_view(payload),
        saved_at,
    )
