"""Scans, results and notes, sealed with the owning patient's data key.

Every function takes the acting user and applies :mod:`storage.policy` before touching data,
and appends an audit event in the same transaction.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, field
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Protocol

import numpy as np
from sqlmodel import Session, select

from storage import audit, crypto, policy, schema
from storage.db import Actor, Database

MAX_NOTE_CHARS = 5000


class RecordNotFound(LookupError):
    """The scan or record does not exist (one plain sentence)."""


class PredictionLike(Protocol):
    """What :meth:`ResultIn.from_prediction` reads of ``models.inference.Prediction``."""

    probabilities: Mapping[str, float]
    abstained: bool
    abstain_reason: str | None
    ood_score: float | None


class ModelInfoLike(Protocol):
    """What :meth:`ResultIn.from_prediction` reads of ``models.inference.ModelInfo``."""

    name: str
    version: str
    sha256: str
    thresholds: Mapping[str, float]


@dataclass(frozen=True)
class ResultIn:
    """A classification to store (what the model layer produced)."""

    probabilities: dict[str, float]
    model_name: str
    model_version: str
    checkpoint_sha256: str
    abstained: bool = False
    abstain_reason: str | None = None
    ood_score: float | None = None
    thresholds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_prediction(cls, prediction: PredictionLike, info: ModelInfoLike) -> ResultIn:
        """The result to store for one model prediction (the one place that maps the two).

        Duck-typed so that storage never imports the model layer.

        Args:
            prediction: A ``models.inference.Prediction``.
            info: The ``Classifier.info`` (``ModelInfo``) of the model that made it.

        Returns:
            The result, with plain ``float`` probabilities and thresholds (copies, so later
            changes to the prediction or the model info do not alter it).
        """
        return cls(
            probabilities={name: float(p) for name, p in prediction.probabilities.items()},
            model_name=info.name,
            model_version=info.version,
            checkpoint_sha256=info.sha256,
            abstained=bool(prediction.abstained),
            abstain_reason=prediction.abstain_reason,
            ood_score=None if prediction.ood_score is None else float(prediction.ood_score),
            thresholds={name: float(t) for name, t in info.thresholds.items()},
        )

    def to_payload(self) -> dict[str, Any]:
        """JSON-safe dictionary of the fields (what gets sealed)."""
        return {
            "probabilities": {k: float(v) for k, v in self.probabilities.items()},
            "model_name": self.model_name,
            "model_version": self.model_version,
            "checkpoint_sha256": self.checkpoint_sha256,
            "abstained": bool(self.abstained),
            "abstain_reason": self.abstain_reason,
            "ood_score": None if self.ood_score is None else float(self.ood_score),
            "thresholds": {k: float(v) for k, v in self.thresholds.items()},
        }


@dataclass(frozen=True, kw_only=True)
class ResultRecord(ResultIn):
    """A stored classification."""

    id: int
    scan_id: int
    created_at: datetime

    def top_finding(self) -> tuple[str, float] | None:
        """The finding with the highest probability, or ``None`` when there are none."""
        if not self.probabilities:
            return None
        name = max(self.probabilities, key=self.probabilities.__getitem__)
        return name, self.probabilities[name]


@dataclass(frozen=True)
class ScanSummary:
    """A scan without its pixels, with its results oldest first."""

    id: int
    owner_id: int
    scan_date: date
    filename: str
    modality: str | None
    results: list[ResultRecord]
    created_at: datetime

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


@dataclass(frozen=True)
class NoteRecord:
    """A note on a scan, optionally with an annotation (a point or a box on the image)."""

    id: int
    scan_id: int
    author_id: int
    author_username: str
    text: str
    annotation: dict[str, Any] | None
    created_at: datetime


def save_scan(
    db: Database,
    actor: Actor,
    *,
    pixels: np.ndarray,
    metadata: dict[str, Any],
    enhancement: dict[str, Any],
    scan_date: date,
    filename: str,
    result: ResultIn | None = None,
) -> int:
    """Store a patient's own scan (pixels in an encrypted blob) and optionally its result.

    Args:
        db: Database handle.
        actor: The patient.
        pixels: Image, (H, W) float in [0, 1].
        metadata: JSON-safe scan metadata (``ScanMetadata.to_dict()``).
        enhancement: JSON-safe enhancement settings used.
        scan_date: When the radiograph was taken.
        filename: Original file name (kept encrypted).
        result: Classification to store with it.

    Returns:
        The new scan id.

    Raises:
        policy.AccessDenied: The actor is not an active patient.
        ValueError: ``pixels`` is not a 2-D image.
    """
    image = np.asarray(pixels, dtype=np.float32)
    if image.ndim != 2 or image.size == 0:
        raise ValueError("The image must be a non-empty 2-D array.")
    buffer = io.BytesIO()
    np.save(buffer, image, allow_pickle=False)
    blob_name = db.blobs.new_name()
    written = False
    try:
        with db.transaction() as session:
            policy.check_write(session, actor, actor.user_id)
            key, version = db.data_key(session, actor.user_id)
            scan = schema.Scan(owner_id=actor.user_id, key_version=version, blob_name=blob_name)
            session.add(scan)
            session.flush()
            scan.payload = crypto.seal_json(
                key,
                {
                    "scan_date": scan_date.isoformat(),
                    "filename": filename,
                    "modality": metadata.get("modality"),
                    "metadata": metadata,
                    "enhancement": enhancement,
                    **intensity_stats(image),
                },
                crypto.associated_data("scans", scan.id, actor.user_id, version),
            )
            session.add(scan)
            blob_aad = crypto.associated_data("blob", scan.id, actor.user_id, version)
            db.blobs.write(blob_name, crypto.seal(key, buffer.getvalue(), blob_aad))
            written = True
            if result is not None:
                _insert_result(session, key, version, scan, result)
            audit.append(session, db, "create_scan", actor=actor, patient_id=actor.user_id,
                         record_type="scans", record_id=scan.id,
                         details={"with_result": result is not None})
            scan_id = scan.id
    except BaseException:
        if written:
            db.blobs.delete(blob_name)
        raise
    return scan_id


def list_scans(db: Database, actor: Actor, patient_id: int) -> list[ScanSummary]:
    """A patient's scans (those the actor may read), oldest scan date first.

    Loads every scan and result of the patient with two queries and one key unwrap.

    Args:
        db: Database handle.
        actor: The patient, or a clinician with a grant or emergency access.
        patient_id: Owner of the scans.

    Returns:
        Summaries with their results oldest first.

    Raises:
        policy.AccessDenied: The actor may not read this patient's records.
        crypto.DecryptionError: A stored value fails its integrity check.
    """
    with db.transaction() as session:
        access = policy.check_read(session, actor, patient_id)
        summaries = _load_summaries(session, db, patient_id, access)
        audit.append(session, db, "list_scans", actor=actor, patient_id=patient_id,
                     record_type="scans", emergency=access.emergency,
                     details={**access.audit_details(), "count": len(summaries)})
    return summaries


def load_scan(db: Database, actor: Actor, scan_id: int) -> ScanRecord:
    """One scan with pixels, metadata, enhancement settings and results.

    Raises:
        RecordNotFound: No such scan.
        policy.AccessDenied: The actor may not read it.
        crypto.DecryptionError: A stored value or the blob fails its integrity check.
    """
    with db.transaction() as session:
        scan = _get_scan(session, scan_id)
        access = policy.check_read(session, actor, scan.owner_id, scan_id)
        keys = db.data_keys(session, scan.owner_id)
        payload = _open_scan_payload(keys, scan)
        results = results_by_scan(session, keys, scan.owner_id, [scan.id]).get(scan.id, [])
        pixels = _read_pixels(db, keys, scan)
        audit.append(session, db, "read_scan", actor=actor, patient_id=scan.owner_id,
                     record_type="scans", record_id=scan.id, emergency=access.emergency,
                     details=access.audit_details())
    return ScanRecord(
        **_summary_fields(scan, payload, results),
        pixels=pixels,
        metadata=payload.get("metadata") or {},
        enhancement=payload.get("enhancement") or {},
    )


def update_scan_date(db: Database, actor: Actor, scan_id: int, scan_date: date) -> None:
    """Correct the date of one's own scan.

    Raises:
        RecordNotFound: No such scan.
        policy.AccessDenied: The actor is not the owning patient.
    """
    with db.transaction() as session:
        scan = _get_scan(session, scan_id)
        policy.check_write(session, actor, scan.owner_id)
        keys = db.data_keys(session, scan.owner_id)
        payload = _open_scan_payload(keys, scan)
        payload["scan_date"] = scan_date.isoformat()
        aad = crypto.associated_data("scans", scan.id, scan.owner_id, scan.key_version)
        scan.payload = crypto.seal_json(_key(keys, scan.key_version), payload, aad)
        session.add(scan)
        audit.append(session, db, "update_scan_date", actor=actor, patient_id=scan.owner_id,
                     record_type="scans", record_id=scan.id)


def add_result(db: Database, actor: Actor, scan_id: int, result: ResultIn) -> int:
    """Store a new classification of one's own scan (e.g. after a model update).

    Returns:
        The new result id.

    Raises:
        RecordNotFound: No such scan.
        policy.AccessDenied: The actor is not the owning patient.
    """
    with db.transaction() as session:
        scan = _get_scan(session, scan_id)
        policy.check_write(session, actor, scan.owner_id)
        key, version = db.data_key(session, scan.owner_id)
        result_id = _insert_result(session, key, version, scan, result)
        audit.append(session, db, "add_result", actor=actor, patient_id=scan.owner_id,
                     record_type="results", record_id=result_id, details={"scan_id": scan.id})
    return result_id


def add_results(db: Database, actor: Actor, results: list[tuple[int, ResultIn]]) -> list[int]:
    """Store many classifications of one's own scans in one transaction (e.g. re-scoring).

    Args:
        db: Database handle.
        actor: The owning patient.
        results: ``(scan_id, result)`` pairs.

    Returns:
        The new result ids, in order.

    Raises:
        RecordNotFound: A scan does not exist.
        policy.AccessDenied: A scan is not the actor's.
    """
    with db.transaction() as session:
        policy.check_write(session, actor, actor.user_id)
        key, version = db.data_key(session, actor.user_id)
        scans: dict[int, schema.Scan] = {}
        ids = []
        for scan_id, result in results:
            if scan_id not in scans:
                scans[scan_id] = _get_scan(session, scan_id)
                policy.require_own_records(actor, scans[scan_id].owner_id)
            ids.append(_insert_result(session, key, version, scans[scan_id], result))
        audit.append(session, db, "add_results", actor=actor, patient_id=actor.user_id,
                     record_type="results", details={"count": len(ids)})
    return ids


def delete_scan(db: Database, actor: Actor, scan_id: int) -> None:
    """Delete one's own scan with its results, notes and image file.

    Raises:
        RecordNotFound: No such scan.
        policy.AccessDenied: The actor is not the owning patient.
    """
    with db.transaction() as session:
        scan = _get_scan(session, scan_id)
        policy.check_write(session, actor, scan.owner_id)
        for model in (schema.Note, schema.Result):
            for row in session.exec(select(model).where(model.scan_id == scan.id)).all():
                session.delete(row)
        session.flush()
        blob_name = scan.blob_name
        session.delete(scan)
        audit.append(session, db, "delete_scan", actor=actor, patient_id=actor.user_id,
                     record_type="scans", record_id=scan_id)
    # Removed only after the rows are committed: a crash in between leaves an unreadable
    # orphan ciphertext rather than a scan whose image is gone.
    db.blobs.delete(blob_name)


def add_note(
    db: Database, actor: Actor, scan_id: int, text: str, annotation: dict[str, Any] | None = None
) -> int:
    """Add a note (the patient, or a clinician who can read the scan).

    Args:
        db: Database handle.
        actor: Author.
        scan_id: Scan the note is about.
        text: Note text (1 to 5000 characters).
        annotation: ``{"x", "y"}`` for a point or ``{"x0", "y0", "x1", "y1"}`` for a box, in
            image pixel coordinates; or ``None``.

    Returns:
        The new note id.

    Raises:
        ValueError: Empty or overlong text, or a malformed annotation.
        RecordNotFound: No such scan.
        policy.AccessDenied: The actor may not read this scan.
    """
    text = text.strip()
    if not text or len(text) > MAX_NOTE_CHARS:
        raise ValueError(f"A note needs between 1 and {MAX_NOTE_CHARS} characters.")
    annotation = _validate_annotation(annotation)
    with db.transaction() as session:
        scan = _get_scan(session, scan_id)
        access = policy.check_add_note(session, actor, scan.owner_id, scan_id)
        key, version = db.data_key(session, scan.owner_id)
        note = schema.Note(scan_id=scan.id, owner_id=scan.owner_id, author_id=actor.user_id,
                           key_version=version)
        session.add(note)
        session.flush()
        note.payload = crypto.seal_json(
            key,
            {"text": text, "annotation": annotation, "author": actor.username},
            crypto.associated_data("notes", note.id, scan.owner_id, version),
        )
        session.add(note)
        audit.append(session, db, "add_note", actor=actor, patient_id=scan.owner_id,
                     record_type="notes", record_id=note.id, emergency=access.emergency,
                     details={**access.audit_details(), "scan_id": scan.id})
        return note.id


def list_notes(db: Database, actor: Actor, scan_id: int) -> list[NoteRecord]:
    """Notes on a scan, oldest first.

    Raises:
        RecordNotFound: No such scan.
        policy.AccessDenied: The actor may not read this scan.
    """
    with db.transaction() as session:
        scan = _get_scan(session, scan_id)
        access = policy.check_read(session, actor, scan.owner_id, scan_id)
        keys = db.data_keys(session, scan.owner_id)
        rows = session.exec(
            select(schema.Note).where(schema.Note.scan_id == scan.id).order_by(schema.Note.id)
        ).all()
        notes = []
        for row in rows:
            aad = crypto.associated_data("notes", row.id, row.owner_id, row.key_version)
            body = crypto.open_json(_key(keys, row.key_version), row.payload, aad)
            notes.append(NoteRecord(row.id, row.scan_id, row.author_id, body["author"],
                                    body["text"], body["annotation"], row.created_at))
        audit.append(session, db, "read_notes", actor=actor, patient_id=scan.owner_id,
                     record_type="scans", record_id=scan.id, emergency=access.emergency,
                     details={**access.audit_details(), "count": len(notes)})
    return notes


def export_user(db: Database, actor: Actor) -> dict[str, Any]:
    """Everything the app holds about the actor, decrypted, as JSON-safe data.

    Patients get their scans (metadata, enhancement, results, notes; image size instead of
    pixels) and grants; other roles get their account only.

    Returns:
        ``{"user": ..., "scans": [...], "grants": [...]}``.
    """
    with db.transaction() as session:
        policy.ensure_active(session, actor)
        user = session.get(schema.User, actor.user_id)
        exported: dict[str, Any] = {
            "user": {"id": user.id, "username": user.username, "role": user.role,
                     "created_at": user.created_at.isoformat()},
            "scans": [],
            "grants": [],
        }
        if actor.role == schema.Role.PATIENT.value:
            exported["scans"] = _export_scans(session, db, actor.user_id)
            grants = session.exec(
                select(schema.ShareGrant).where(schema.ShareGrant.patient_id == actor.user_id)
            ).all()
            exported["grants"] = [
                {"id": g.id, "clinician_id": g.clinician_id,
                 "scan_ids": policy.parse_scan_ids(g.scan_ids) or None,
                 "created_at": g.created_at.isoformat(), "expires_at": g.expires_at.isoformat(),
                 "revoked_at": g.revoked_at.isoformat() if g.revoked_at else None}
                for g in grants
            ]
        audit.append(session, db, "export", actor=actor, patient_id=actor.user_id,
                     details={"scans": len(exported["scans"])})
    return exported


def _export_scans(session: Session, db: Database, patient_id: int) -> list[dict[str, Any]]:
    keys = db.data_keys(session, patient_id)
    scans = session.exec(
        select(schema.Scan).where(schema.Scan.owner_id == patient_id).order_by(schema.Scan.id)
    ).all()
    results = results_by_scan(session, keys, patient_id, [s.id for s in scans])
    notes = session.exec(select(schema.Note).where(schema.Note.owner_id == patient_id)).all()
    notes_by_scan: dict[int, list[dict[str, Any]]] = {}
    for note in notes:
        aad = crypto.associated_data("notes", note.id, note.owner_id, note.key_version)
        body = crypto.open_json(_key(keys, note.key_version), note.payload, aad)
        notes_by_scan.setdefault(note.scan_id, []).append(
            {"id": note.id, "author_id": note.author_id, **body,
             "created_at": note.created_at.isoformat()}
        )
    out = []
    for scan in scans:
        payload = _open_scan_payload(keys, scan)
        out.append({
            "id": scan.id,
            **payload,
            "created_at": scan.created_at.isoformat(),
            "results": [
                {**asdict(r), "created_at": r.created_at.isoformat()}
                for r in results.get(scan.id, [])
            ],
            "notes": notes_by_scan.get(scan.id, []),
        })
    return out


def _load_summaries(
    session: Session, db: Database, patient_id: int, access: policy.Access
) -> list[ScanSummary]:
    keys = db.data_keys(session, patient_id)
    scans = [
        s for s in session.exec(select(schema.Scan).where(schema.Scan.owner_id == patient_id)).all()
        if access.covers(s.id)
    ]
    results = results_by_scan(session, keys, patient_id, None)
    summaries = [
        ScanSummary(**_summary_fields(scan, _open_scan_payload(keys, scan),
                                      results.get(scan.id, [])))
        for scan in scans
    ]
    summaries.sort(key=lambda s: (s.scan_date, s.id))
    return summaries


def results_by_scan(
    session: Session, keys: dict[int, bytes], owner_id: int, scan_ids: list[int] | None
) -> dict[int, list[ResultRecord]]:
    """Decrypted results of one owner's scans, grouped by scan id, oldest first.

    For storage modules only: no access check or audit here, the caller applies both.

    Args:
        session: The caller's open session.
        keys: Every version of the owner's data key.
        owner_id: The patient whose results are read.
        scan_ids: Only these scans; ``None`` for all of the owner's scans.

    Returns:
        ``{scan_id: [ResultRecord, ...]}``; scans without results are absent.

    Raises:
        crypto.DecryptionError: A result fails its integrity check or names an unknown key version.
    """
    table = schema.Result.__table__
    query = (
        select(table.c.id, table.c.scan_id, table.c.key_version, table.c.payload,
               table.c.created_at)
        .where(table.c.owner_id == owner_id)
        .order_by(table.c.id)
    )
    if scan_ids is not None:
        if not scan_ids:
            return {}
        query = query.where(table.c.scan_id.in_(scan_ids))
    ciphers = {version: crypto.Cipher(key) for version, key in keys.items()}
    grouped: dict[int, list[ResultRecord]] = {}
    for row_id, scan_id, version, payload, created_at in session.exec(query):
        cipher = ciphers.get(version)
        if cipher is None:
            raise crypto.DecryptionError("A result was sealed with an unknown key version.")
        body = cipher.open_json(payload, crypto.associated_data("results", row_id, owner_id,
                                                                 version))
        grouped.setdefault(scan_id, []).append(
            ResultRecord(**body, id=row_id, scan_id=scan_id, created_at=created_at)
        )
    return grouped


def _insert_result(
    session: Session, key: bytes, version: int, scan: schema.Scan, result: ResultIn
) -> int:
    bad = [k for k, v in result.probabilities.items() if not math.isfinite(float(v))]
    if bad:
        raise ValueError(f"Probabilities must be finite numbers (got {bad}).")
    row = schema.Result(scan_id=scan.id, owner_id=scan.owner_id, key_version=version)
    session.add(row)
    session.flush()
    row.payload = crypto.seal_json(
        key, result.to_payload(), crypto.associated_data("results", row.id, scan.owner_id, version)
    )
    session.add(row)
    session.flush()
    return row.id


def intensity_stats(pixels: np.ndarray) -> dict[str, float]:
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
    session: Session, db: Database, keys: dict[int, bytes], scan: schema.Scan
) -> dict[str, Any]:
    """A stored scan's decrypted payload, with its intensity statistics added if it predates them.

    For storage modules only: no access check here, the caller applies the policy. A scan
    saved before the statistics were sealed has its image decrypted once; the statistics
    are then sealed into its payload, under a row lock so that a concurrent change to the
    payload (a corrected scan date) is not overwritten.

    Args:
        session: The caller's open session.
        db: Database handle.
        keys: Every version of the owner's data key.
        scan: The scan row.

    Returns:
        The payload (``scan_date``, ``metadata``, ... and ``intensity_mean``,
        ``intensity_std``).

    Raises:
        crypto.DecryptionError: The payload or the image fails its integrity check.
    """
    payload = _open_scan_payload(keys, scan)
    if "intensity_mean" in payload and "intensity_std" in payload:
        return payload
    scan = session.exec(
        select(schema.Scan).where(schema.Scan.id == scan.id).with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    payload = _open_scan_payload(keys, scan)
    payload.update(intensity_stats(_read_pixels(db, keys, scan)))
    aad = crypto.associated_data("scans", scan.id, scan.owner_id, scan.key_version)
    scan.payload = crypto.seal_json(_key(keys, scan.key_version), payload, aad)
    session.add(scan)
    return payload


def _read_pixels(db: Database, keys: dict[int, bytes], scan: schema.Scan) -> np.ndarray:
    blob_aad = crypto.associated_data("blob", scan.id, scan.owner_id, scan.key_version)
    try:
        sealed = db.blobs.read(scan.blob_name)
    except FileNotFoundError as exc:
        raise crypto.DecryptionError("The image file of this scan is missing.") from exc
    raw = crypto.open_sealed(_key(keys, scan.key_version), sealed, blob_aad)
    return np.load(io.BytesIO(raw), allow_pickle=False)


def _get_scan(session: Session, scan_id: int) -> schema.Scan:
    scan = session.get(schema.Scan, scan_id)
    if scan is None:
        raise RecordNotFound("This scan does not exist.")
    return scan


def _key(keys: dict[int, bytes], version: int) -> bytes:
    try:
        return keys[version]
    except KeyError as exc:
        raise crypto.DecryptionError("A record was sealed with an unknown key version.") from exc


def _open_scan_payload(keys: dict[int, bytes], scan: schema.Scan) -> dict[str, Any]:
    aad = crypto.associated_data("scans", scan.id, scan.owner_id, scan.key_version)
    return crypto.open_json(_key(keys, scan.key_version), scan.payload, aad)


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
    }


def _validate_annotation(annotation: dict[str, Any] | None) -> dict[str, Any] | None:
    if annotation is None:
        return None
    point, box = {"x", "y"}, {"x0", "y0", "x1", "y1"}
    keys = set(annotation)
    if keys not in (point, box):
        raise ValueError("An annotation is a point (x, y) or a box (x0, y0, x1, y1).")
    values = {k: float(annotation[k]) for k in keys}
    if any(not math.isfinite(v) or v < 0 for v in values.values()):
        raise ValueError("Annotation coordinates must be non-negative numbers.")
    if keys == box and (values["x1"] < values["x0"] or values["y1"] < values["y0"]):
        raise ValueError("A box needs x1 >= x0 and y1 >= y0.")
    return values
