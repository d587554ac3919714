"""A patient's CD or download: a ZIP file, a DICOMDIR with its folder, or a folder of DICOM
files, read as the studies and series it holds without decoding a single film.

:func:`list_media` reads every file's header (never its pixels) and groups the films by
Study Instance UID (0020,000D) and Series Instance UID (0020,000E). Series of chest
radiographs are pre-selected; what cannot be imported (reports and other objects without an
image, other modalities, other parts of the body, files that are not DICOM or are damaged)
is left out of the listing with one sentence per kind. :func:`iter_images` then gives the
chosen series' files one at a time, for :func:`core.imaging.decode_scan`.

Where a DICOMDIR (PS3.10 Media Storage Directory) is present, only the files it references
are read, so a CD's viewer program and its hundreds of files are never looked at. Its
Directory Record Sequence (0004,1220) is read with pydicom, and each Referenced File ID
(0004,1500) is looked up among the files actually present (case and ISO 9660 version
suffixes ignored); pydicom's ``FileSet`` is not used to read, as it needs the files on a
disk (not in a ZIP) and resolves paths itself.

A ZIP archive is checked before any member is read: the number of members (from the end
of central directory record, before the directory itself is loaded), their total unpacked
size and each member's compression ratio against the limits of :mod:`core.settings`, and
every name, so that one holding ``..``, an absolute path or a symbolic link is refused. Members
are then read one at a time from the archive on disk (or the upload's buffer): a 700 MB CD
is never held in memory, only its largest file. Nothing is ever extracted to disk.

The patient's name, read for the "is this you?" check, lives only in memory
(:class:`MediaPatient`); nothing here stores anything.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import re
import stat
import struct
import zipfile
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import BinaryIO

import pydicom

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
from core.errors import UserError
from core.imaging import ScanError, UnsupportedFormat, read_dicom_header
from core.settings import Settings, load_settings
from core.views import View
from core.words import plural

#: Below this many unpacked bytes a ZIP member's ratio is not checked: a small file (a text,
#: a tiny DICOMDIR) can pack beyond any ratio and costs nothing to unpack.
_RATIO_FLOOR = 1024 * 1024
#: The end of central directory record: its signature, and its size without the comment.
_EOCD_SIGNATURE = b"PK\x05\x06"
_EOCD_SIZE = 22
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_EOCD_SIGNATURE = b"PK\x06\x06"
#: A ZIP comment is at most 65535 bytes, so the record starts within this many of the end.
_EOCD_SEARCH = _EOCD_SIZE + 0xFFFF + 20
#: Names that archivers and desktops add beside the files: macOS resource forks, hidden files.
_IGNORED_FOLDER = "__MACOSX"
#: ISO 9660 file names may end in a version (``;1``) and a bare dot.
_ISO_SUFFIX = re.compile(r"\.?(;\d+)?$")
_DICOMDIR = "DICOMDIR"


class MediaError(UserError, ValueError):
    """A ZIP file, DICOMDIR or folder that cannot be read at all; ``str(err)`` says why."""

    code = "media"
    default_message = "This disc or archive could not be read."


@dataclass(frozen=True)
class MediaLimits:
    """What an archive or folder may hold before anything in it is read.

    Attributes:
        max_total_bytes: Most bytes all its files may unpack to.
        max_files: Most files (ZIP members, or files under the folder).
        max_ratio: Largest unpacked-to-packed ratio of a ZIP member over 1 MB.
        max_file_bytes: Largest single file read (the upload limit for one film).
    """

    max_total_bytes: int
    max_files: int
    max_ratio: int
    max_file_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> MediaLimits:
        """The limits of ``settings`` (default: :func:`core.settings.load_settings`)."""
        settings = settings or load_settings()
        return cls(
            max_total_bytes=settings.archive_max_bytes,
            max_files=settings.archive_max_files,
            max_ratio=settings.archive_max_ratio,
            max_file_bytes=settings.max_upload_bytes,
        )


@dataclass(frozen=True)
class MediaPatient:
    """Who a series' headers say the patient is.

    Attributes:
        patient_id: Patient ID (0010,0020).
        name: Patient's Name (0010,0010) as "Given Family"; kept in memory only, to ask the
            uploader "is this you?", and never stored or logged (left out of ``repr``).
        birth_date: Patient's Birth Date (0010,0030).
        age: Patient's Age (0010,1010) in whole years at the study.
        sex: Patient's Sex (0010,0040).
    """

    patient_id: str | None
    name: str | None = field(repr=False)
    birth_date: date | None
    age: int | None
    sex: str | None


@dataclass(frozen=True)
class MediaInstance:
    """One DICOM file of a series.

    Attributes:
        location: Its name in the ZIP, or its path under the folder (POSIX separators).
        size: Its size in bytes.
        sop_instance_uid: SOP Instance UID (0008,0018).
        instance_number: Instance Number (0020,0013).
        view: The projection its header states (:func:`core.dicom_header.dicom_view`: View
            Position (0018,5101), Patient Orientation (0020,0020), descriptions).
        frames: Number of Frames (0028,0008); the decoder reads the first.
    """

    location: str
    size: int
    sop_instance_uid: str | None
    instance_number: int | None
    view: View | None
    frames: int = 1


@dataclass(frozen=True)
class MediaSeries:
    """One series that can be imported.

    Attributes:
        uid: Series Instance UID (0020,000E).
        study_uid: Study Instance UID (0020,000D) of its study.
        number: Series Number (0020,0011).
        date: Series Date (0008,0021), else the Study Date (0008,0020).
        description: Series Description (0008,103E).
        modality: Modality (0008,0060): CR, DX, RG, or ``None`` when absent.
        body_part: Body Part Examined (0018,0015).
        laterality: Image Laterality (0020,0062), else Laterality (0020,0060).
        patient: The patient its first file names.
        instances: Its files, by Instance Number.
        preselected: A chest radiograph: a radiographic modality (or none stated) and the
            chest named in Body Part Examined or a description; ticked for import at first.
    """

    uid: str
    study_uid: str
    number: int | None
    date: date | None
    description: str | None
    modality: str | None
    body_part: str | None
    laterality: str | None
    patient: MediaPatient
    instances: tuple[MediaInstance, ...]
    preselected: bool

    @property
    def image_count(self) -> int:
        """How many files (films) the series holds."""
        return len(self.instances)

    @property
    def views(self) -> tuple[View, ...]:
        """The distinct views its files state, in file order (empty when none says)."""
        return tuple(dict.fromkeys(i.view for i in self.instances if i.view is not None))


@dataclass(frozen=True)
class MediaStudy:
    """One study and its importable series.

    Attributes:
        uid: Study Instance UID (0020,000D).
        date: Study Date (0008,0020).
        description: Study Description (0008,1030).
        series: Its series, by Series Number.
    """

    uid: str
    date: date | None
    description: str | None
    series: tuple[MediaSeries, ...]


@dataclass(frozen=True)
class MediaListing:
    """What a CD, archive or folder holds.

    Attributes:
        kind: ``"zip"`` or ``"folder"``.
        dicomdir: Whether a DICOMDIR chose the files read.
        studies: The studies with at least one importable series, oldest first (undated last).
        skipped: One sentence per kind of thing left out, for the uploader.
    """

    kind: str
    dicomdir: bool
    studies: tuple[MediaStudy, ...]
    skipped: tuple[str, ...]

    @property
    def series(self) -> tuple[MediaSeries, ...]:
        """Every importable series, study by study."""
        return tuple(one for study in self.studies for one in study.series)

    @property
    def preselected(self) -> tuple[MediaSeries, ...]:
        """The series of chest radiographs, ticked for import at first."""
        return tuple(one for one in self.series if one.preselected)

    @property
    def patient_ids(self) -> frozenset[str]:
        """The distinct Patient IDs (0010,0020) of the series; more than one asks "is this you?"."""
        return frozenset(s.patient.patient_id for s in self.series if s.patient.patient_id)


@dataclass(frozen=True)
class MediaImage:
    """One chosen file's bytes, with where it came from.

    Attributes:
        series: Its series.
        instance: The file.
        data: Its bytes, for :func:`core.imaging.decode_scan`.
    """

    series: MediaSeries
    instance: MediaInstance
    data: bytes


# --------------------------------------------------------------------------- public API


def list_media(source: Path | BinaryIO, limits: MediaLimits | None = None) -> MediaListing:
    """List the studies and series of a ZIP file, a DICOMDIR with its folder, or a folder.

    Args:
        source: A folder, a DICOMDIR file (its folder is read), or a ZIP file as a path or
            an open binary file (an upload's buffer).
        limits: What the source may hold; defaults to :meth:`MediaLimits.from_settings`.

    Returns:
        The importable studies and series, and a sentence per kind of thing left out.

    Raises:
        MediaError: The source is not a ZIP file or folder, exceeds a limit, or is unsafe
            (a member name leaving the archive, a link, a password, a decompression bomb).
    """
    limits = limits or MediaLimits.from_settings()
    with _open_medium(source, limits) as medium:
        return _Lister(medium, limits).listing()


def iter_images(
    source: Path | BinaryIO,
    series: Iterable[MediaSeries],
    limits: MediaLimits | None = None,
) -> Iterator[MediaImage]:
    """Yield the bytes of every file of ``series``, one file at a time.

    The source is opened and checked again, so the caller keeps only the listing between
    the two steps; only one file's bytes are in memory at a time.

    Args:
        source: The same source :func:`list_media` read.
        series: The chosen series from its listing, in the order to import them.
        limits: As for :func:`list_media`.

    Yields:
        Each file with its series and instance, series by series, by Instance Number.

    Raises:
        MediaError: The source fails a check, or no longer holds a listed file as it was.
    """
    limits = limits or MediaLimits.from_settings()
    with _open_medium(source, limits) as medium:
        entries = {entry.name: entry for entry in medium.entries}
        for one in series:
            for instance in one.instances:
                entry = entries.get(instance.location)
                if entry is None or entry.size != instance.size:
                    raise MediaError(_CHANGED)
                with medium.open(entry) as stream:
                    data = stream.read(limits.max_file_bytes + 1)
                if len(data) != instance.size:
                    raise MediaError(_CHANGED)
                yield MediaImage(one, instance, data)


_CHANGED = "This disc or archive changed since it was read; please choose it again."


# --------------------------------------------------------------------------- the media


@dataclass(frozen=True)
class _Entry:
    """A file of the medium: its POSIX path from the root, and its (unpacked) size."""

    name: str
    size: int


class _Medium(ABC):
    """The files of a ZIP archive or a folder, each opened on demand."""

    kind = ""

    def __init__(self) -> None:
        self.entries: list[_Entry] = []
        self.links = 0

    @abstractmethod
    def open(self, entry: _Entry) -> BinaryIO:
        """The entry's bytes as a readable, seekable stream (close it after use)."""


class _ZipMedium(_Medium):
    kind = "zip"

    def __init__(self, archive: zipfile.ZipFile) -> None:
        super().__init__()
        self._archive = archive

    def open(self, entry: _Entry) -> BinaryIO:
        # ZipExtFile is a BufferedIOBase that inflates as it is read.
        return self._archive.open(entry.name)  # type: ignore[return-value]


class _FolderMedium(_Medium):
    kind = "folder"

    def __init__(self, root: Path) -> None:
        super().__init__()
        self._root = root

    def open(self, entry: _Entry) -> BinaryIO:
        # O_NOFOLLOW: a file swapped for a link since the listing is not followed.
        descriptor = os.open(self._root / entry.name, os.O_RDONLY | os.O_NOFOLLOW)
        return os.fdopen(descriptor, "rb")


@contextlib.contextmanager
def _open_medium(source: Path | BinaryIO, limits: MediaLimits) -> Iterator[_Medium]:
    if isinstance(source, Path) and source.is_dir():
        yield _folder(source, limits)
        return
    if isinstance(source, Path) and source.name.upper() == _DICOMDIR:
        yield _folder(source.parent, limits)
        return
    with contextlib.ExitStack() as stack:
        stream = stack.enter_context(source.open("rb")) if isinstance(source, Path) else source
        yield _zip(stream, stack, limits)


def _zip(stream: BinaryIO, stack: contextlib.ExitStack, limits: MediaLimits) -> _ZipMedium:
    """Open and check a ZIP archive before any member is read."""
    declared = _declared_member_count(stream)
    if declared > limits.max_files:
        raise MediaError(_too_many_files(limits))
    try:
        archive = stack.enter_context(zipfile.ZipFile(stream))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise MediaError(_NOT_A_ZIP) from exc
    infos = archive.infolist()
    if len(infos) > limits.max_files:
        raise MediaError(_too_many_files(limits))
    if sum(info.file_size for info in infos) > limits.max_total_bytes:
        raise MediaError(_too_big(limits))
    medium = _ZipMedium(archive)
    for info in infos:
        _check_member(info, limits)
        if not info.is_dir() and not _ignored(info.filename):
            medium.entries.append(_Entry(info.filename, info.file_size))
    return medium


def _declared_member_count(stream: BinaryIO) -> int:
    """The member count an archive's end of central directory record declares.

    Read before ``zipfile`` loads the whole central directory, which for a hostile archive
    of millions of empty members would take gigabytes of memory.
    """
    try:
        size = stream.seek(0, io.SEEK_END)
        stream.seek(max(0, size - _EOCD_SEARCH))
        tail = stream.read()
        at = tail.rfind(_EOCD_SIGNATURE)
        if at < 0 or len(tail) - at < _EOCD_SIZE:
            raise MediaError(_NOT_A_ZIP)
        count: int = struct.unpack("<H", tail[at + 10 : at + 12])[0]
        locator = tail[max(0, at - 20) : at]
        if count == 0xFFFF and locator.startswith(_ZIP64_LOCATOR_SIGNATURE):
            stream.seek(struct.unpack("<Q", locator[8:16])[0])
            record = stream.read(56)
            if record.startswith(_ZIP64_EOCD_SIGNATURE):
                count = struct.unpack("<Q", record[32:40])[0]
        stream.seek(0)
    except (OSError, struct.error) as exc:
        raise MediaError(_NOT_A_ZIP) from exc
    return count


def _check_member(info: zipfile.ZipInfo, limits: MediaLimits) -> None:
    """Refuse the archive for one unsafe member: its name, its kind, its packing."""
    parts = info.filename.replace("\\", "/").split("/")
    if info.filename.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", info.filename):
        raise MediaError(_UNSAFE_NAME)
    if ".." in parts:
        raise MediaError(_UNSAFE_NAME)
    if stat.S_ISLNK(info.external_attr >> 16):
        raise MediaError("This archive holds a link to another file, so it was refused as unsafe.")
    if info.flag_bits & 0x1:
        raise MediaError("This archive is protected by a password; please unpack it first.")
    if info.file_size > _RATIO_FLOOR and info.file_size > limits.max_ratio * max(
        info.compress_size, 1
    ):
        raise MediaError(
            "This archive is packed far tighter than real scans can be, "
            "so it was refused as unsafe."
        )


def _folder(root: Path, limits: MediaLimits) -> _FolderMedium:
    """List a folder's files (links not followed), within the file-count and size limits."""
    medium = _FolderMedium(root)
    total = 0
    for folder, subfolders, files in os.walk(root):
        here = Path(folder)
        # os.walk lists a link to a folder but does not enter it; say so.
        medium.links += sum((here / name).is_symlink() for name in subfolders)
        subfolders[:] = sorted(name for name in subfolders if not _ignored(name))
        for name in sorted(files):
            path = here / name
            status = path.lstat()
            if stat.S_ISLNK(status.st_mode):
                medium.links += 1
            elif stat.S_ISREG(status.st_mode) and not _ignored(name):
                total += status.st_size
                medium.entries.append(_Entry(path.relative_to(root).as_posix(), status.st_size))
                if len(medium.entries) > limits.max_files:
                    raise MediaError(_too_many_files(limits))
                if total > limits.max_total_bytes:
                    raise MediaError(_too_big(limits))
    return medium


def _ignored(name: str) -> bool:
    """Desktop and archiver clutter: hidden files and macOS resource forks."""
    parts = name.rstrip("/").split("/")
    return parts[0] == _IGNORED_FOLDER or parts[-1].startswith(".")


_NOT_A_ZIP = "This file is not a ZIP archive, or it is damaged."
_UNSAFE_NAME = "This archive names a file outside itself, so it was refused as unsafe."


def _too_many_files(limits: MediaLimits) -> str:
    return f"This holds more than {limits.max_files} files, more than the app accepts at once."


def _too_big(limits: MediaLimits) -> str:
    megabytes = limits.max_total_bytes // (1024 * 1024)
    return f"This unpacks to more than {megabytes} MB, more than the app accepts at once."


# --------------------------------------------------------------------------- the listing


@dataclass
class _Found:
    """The files of one series found so far, with the first one's header."""

    header: pydicom.Dataset
    instances: list[MediaInstance] = field(default_factory=list)


class _Lister:
    """Reads the headers of a medium's files and sorts them into series and skips."""

    def __init__(self, medium: _Medium, limits: MediaLimits) -> None:
        self._medium = medium
        self._limits = limits
        self._series: dict[tuple[str, str], _Found] = {}
        self._instances: set[str] = set()
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._documents: defaultdict[str, int] = defaultdict(int)
        self._other_kinds: defaultdict[str, set[str]] = defaultdict(set)
        self._other_parts: defaultdict[str, set[str]] = defaultdict(set)

    def listing(self) -> MediaListing:
        candidates, dicomdir = self._candidates()
        for entry in candidates:
            self._read(entry)
        return MediaListing(
            kind=self._medium.kind,
            dicomdir=dicomdir,
            studies=self._studies(),
            skipped=self._sentences(),
        )

    def _candidates(self) -> tuple[list[_Entry], bool]:
        """The files a DICOMDIR references, or every file where there is none (or it is
        unreadable)."""
        entries = self._medium.entries
        indexes = [e for e in entries if posixpath.basename(e.name).upper() == _DICOMDIR]
        if not indexes:
            return entries, False
        present = {_normalised(entry.name): entry for entry in entries}
        chosen: dict[str, _Entry] = {}
        for index in indexes:
            file_ids = self._referenced_files(index)
            if file_ids is None:
                self._counts["bad_dicomdir"] += 1
                return [e for e in entries if e not in indexes], False
            folder = posixpath.dirname(index.name)
            for file_id in file_ids:
                entry = present.get(_normalised(posixpath.join(folder, *file_id)))
                if entry is None:
                    self._counts["missing"] += 1
                else:
                    chosen[entry.name] = entry
        return list(chosen.values()), True

    def _referenced_files(self, index: _Entry) -> list[tuple[str, ...]] | None:
        """Each Referenced File ID (0004,1500) of a DICOMDIR's records; None if unreadable."""
        if index.size > self._limits.max_file_bytes:
            return None
        try:
            with self._medium.open(index) as stream:
                dicomdir = pydicom.dcmread(io.BytesIO(stream.read()))
            records = dicomdir.DirectoryRecordSequence
        except Exception:  # any parser failure means the index cannot be used
            return None
        file_ids = []
        for record in records:
            value = record.get("ReferencedFileID")
            if value:
                parts = [value] if isinstance(value, str) else list(value)
                file_ids.append(tuple(str(part).strip() for part in parts))
        return file_ids

    def _read(self, entry: _Entry) -> None:
        if entry.size > self._limits.max_file_bytes:
            self._counts["too_large"] += 1
            return
        try:
            with self._medium.open(entry) as stream:
                header = read_dicom_header(stream)
        except UnsupportedFormat:
            self._counts["not_dicom"] += 1
            return
        except (ScanError, OSError, zipfile.BadZipFile, NotImplementedError):
            # NotImplementedError: a member packed with a method zipfile cannot unpack.
            self._counts["damaged"] += 1
            return
        self._sort(entry, header)

    def _sort(self, entry: _Entry, header: pydicom.Dataset) -> None:
        sop_instance = dicom_text(header, "SOPInstanceUID")
        if sop_instance is not None and sop_instance in self._instances:
            self._counts["copies"] += 1
            return
        if sop_instance is not None:
            self._instances.add(sop_instance)
        document = document_kind(header)
        if document is not None:
            self._documents[document.code] += 1
            return
        if not (_integer(header.get("Rows")) and _integer(header.get("Columns"))):
            # Another kind of object without an image, or a header cut short.
            self._counts["no_image"] += 1
            return
        study, series = _study_key(header), _series_key(header)
        other_kind = other_modality_kind(dicom_text(header, "Modality"))
        if other_kind is not None:
            self._other_kinds[other_kind].add(series)
            return
        part = body_part_out_of_scope(dicom_text(header, "BodyPartExamined"))
        if part is not None:
            self._other_parts[part.what].add(series)
            return
        found = self._series.setdefault((study, series), _Found(header))
        found.instances.append(
            MediaInstance(
                location=entry.name,
                size=entry.size,
                sop_instance_uid=sop_instance,
                instance_number=_integer(header.get("InstanceNumber")),
                view=dicom_view(header),
                frames=_integer(header.get("NumberOfFrames")) or 1,
            )
        )

    def _studies(self) -> tuple[MediaStudy, ...]:
        by_study: defaultdict[str, list[MediaSeries]] = defaultdict(list)
        for (study, series), found in self._series.items():
            by_study[study].append(_series(study, series, found))
        studies = []
        for study, members in by_study.items():
            header = self._series[(study, members[0].uid)].header
            members.sort(key=lambda s: (s.number is None, s.number or 0, s.uid))
            studies.append(
                MediaStudy(
                    uid=study,
                    date=dicom_date(header.get("StudyDate")),
                    description=dicom_text(header, "StudyDescription"),
                    series=tuple(members),
                )
            )
        studies.sort(key=lambda s: (s.date is None, s.date or date.min, s.uid))
        return tuple(studies)

    def _sentences(self) -> tuple[str, ...]:
        counts = self._counts
        sentences = []
        if counts["bad_dicomdir"]:
            sentences.append(
                "The disc's index (DICOMDIR) could not be read, so every file was looked at."
            )
        if counts["missing"]:
            files = plural(counts["missing"], "file")
            verb = "is" if counts["missing"] == 1 else "are"
            sentences.append(f"The disc's index (DICOMDIR) lists {files} that {verb} not there.")
        for code, count in sorted(self._documents.items()):
            sentences.append(f"Left out {documents_phrase(code, count)}.")
        for kind, series in sorted(self._other_kinds.items()):
            sentences.append(
                f"Left out {plural(len(series), 'series', 'series')} of {kind}: "
                "the app reads chest X-rays only."
            )
        if self._other_parts:
            count = len(set().union(*self._other_parts.values()))
            verb = "shows" if count == 1 else "show"
            sentences.append(
                f"Left out {plural(count, 'series', 'series')} that {verb} "
                f"{_and(sorted(self._other_parts))}, not the chest."
            )
        for key, one, several in _FILE_SKIPS:
            if counts[key]:
                sentences.append(
                    "Left out " + (one if counts[key] == 1 else several.format(counts[key])) + "."
                )
        if self._medium.links:
            links = plural(self._medium.links, "link")
            sentences.append(f"Did not follow {links} to other places on the disk.")
        return tuple(sentences)


#: (count key, the sentence's end for one file, for several) of files left out one by one.
_FILE_SKIPS = (
    ("not_dicom", "1 file that is not a DICOM image", "{} files that are not DICOM images"),
    ("damaged", "1 damaged DICOM file", "{} damaged DICOM files"),
    (
        "no_image",
        "1 DICOM file that holds no readable image",
        "{} DICOM files that hold no readable image",
    ),
    ("too_large", "1 file too large for one film", "{} files too large for one film"),
    ("copies", "1 copy of a file already listed", "{} copies of files already listed"),
)


def _series(study: str, uid: str, found: _Found) -> MediaSeries:
    header = found.header
    modality = dicom_text(header, "Modality")
    body_part = dicom_text(header, "BodyPartExamined")
    descriptions = [
        dicom_text(header, keyword)
        for keyword in ("SeriesDescription", "StudyDescription", "ProtocolName")
    ]
    return MediaSeries(
        uid=uid,
        study_uid=study,
        number=_integer(header.get("SeriesNumber")),
        date=dicom_date(header.get("SeriesDate")) or dicom_date(header.get("StudyDate")),
        description=descriptions[0],
        modality=modality,
        body_part=body_part,
        laterality=dicom_text(header, "ImageLaterality") or dicom_text(header, "Laterality"),
        patient=_patient(header),
        instances=tuple(
            sorted(
                found.instances,
                key=lambda i: (i.instance_number is None, i.instance_number or 0, i.location),
            )
        ),
        preselected=(modality is None or modality.upper() in RADIOGRAPH_MODALITIES)
        and mentions_chest(body_part, *descriptions),
    )


def _patient(header: pydicom.Dataset) -> MediaPatient:
    name = header.get("PatientName")
    words = [] if name is None else [name.given_name, name.middle_name, name.family_name]
    text = " ".join(word.strip() for word in words if word and word.strip())
    return MediaPatient(
        patient_id=dicom_text(header, "PatientID"),
        name=text if text and len(text) <= 3 * 64 and text.isprintable() else None,
        birth_date=dicom_date(header.get("PatientBirthDate")),
        age=dicom_age(header.get("PatientAge")),
        sex=dicom_text(header, "PatientSex"),
    )


def _study_key(header: pydicom.Dataset) -> str:
    """Study Instance UID; without one, the patient, date and Study ID stand for it."""
    return dicom_text(header, "StudyInstanceUID") or "/".join(
        str(dicom_text(header, keyword)) for keyword in ("PatientID", "StudyDate", "StudyID")
    )


def _series_key(header: pydicom.Dataset) -> str:
    """Series Instance UID; without one, the study, Series Number and Modality stand for it."""
    return dicom_text(header, "SeriesInstanceUID") or "/".join(
        [_study_key(header)]
        + [str(dicom_text(header, keyword)) for keyword in ("SeriesNumber", "Modality")]
    )


def _normalised(name: str) -> str:
    """A path as looked up: upper case, without ISO 9660 version suffixes (``IM1.;1``)."""
    return "/".join(_ISO_SUFFIX.sub("", part.upper()) for part in name.split("/"))


def _integer(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _and(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
