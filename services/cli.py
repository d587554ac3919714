"""Command-line administration: ``python -m storage.cli --help``.

Every command honours ``DATA_DIR``, ``DATABASE_URL`` and ``MASTER_KEY`` like the app.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import zipfile
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from core.errors import UserError
from core.settings import load_settings
from core.views import View, is_frontal, parse_view
from core.words import plural
from services import maintenance
from services.export import export_records
from services.imports import ImportedScan, MissingScanView, ScanFile, import_scans
from services.keys import rotate_master_key, rotate_user_key
from services.media import check_media, import_media
from storage import accounts, audit, crypto, rekey
from storage.actor import Actor
from storage.bootstrap import open_database
from storage.db import Database

if TYPE_CHECKING:
    from models.inference import Classifier

EXIT_FAILED_FILES = 2

#: Who the audit trail names for changes made from the command line.
OPERATOR = "(command line)"


def main(argv: list[str] | None = None) -> int:
    """Run one command.

    Args:
        argv: Arguments (defaults to ``sys.argv[1:]``).

    Returns:
        Process exit status.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    args = _parser().parse_args(argv)
    db = open_database(load_settings(), maintenance=getattr(args, "maintenance", False))
    try:
        return int(args.handler(db, args))
    except (UserError, crypto.MasterKeyError, crypto.DecryptionError) as exc:
        # A failed integrity check is a sentence for the operator too (and is audited).
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m storage.cli", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    create = commands.add_parser("create-user", help="create an account (password read from stdin)")
    create.add_argument("name")
    create.add_argument(
        "--role", default="patient", choices=["patient", "clinician", "analyst", "admin"]
    )
    create.set_defaults(handler=_create_user)

    scan = commands.add_parser("import-scan", help="decode, classify and store scans for a patient")
    scan.add_argument("--user", required=True)
    scan.add_argument(
        "--date",
        type=date.fromisoformat,
        help=(
            "YYYY-MM-DD: the date of every file given, whatever it says; without it each file "
            "takes its own (DICOM Study Date), and one without a date is not imported"
        ),
    )
    scan.add_argument(
        "--confirm-identity",
        action="store_true",
        help="import a CD or archive whose headers may name someone else (another Patient ID, "
        "birth date or age): you confirm the films are the user's",
    )
    scan.add_argument(
        "--view",
        type=_view_argument,
        help=(
            "the view of every file: PA, AP, 'AP supine', lateral or unknown. Required for "
            "PNG/JPEG (use 'unknown' when it is not known; such scans are not scored); a DICOM "
            "file takes it from its header unless this is given, and a different header is noted"
        ),
    )
    scan.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="image files, or one CD: a ZIP file, a DICOMDIR or a folder of DICOM files (its "
        "chest radiograph series are imported)",
    )
    scan.set_defaults(handler=_import_scan)

    export = commands.add_parser(
        "export",
        help="print a user's decrypted records as JSON or their readings as FHIR, or write "
        "their DICOM films' readings as DICOM SR files",
    )
    export.add_argument("--user", required=True)
    export.add_argument(
        "--format",
        choices=["json", "fhir", "dicom-sr"],
        default="json",
        help=(
            "json: everything the app holds about the user (default); fhir: the patient's "
            "readings as a FHIR R4 Bundle; dicom-sr: one DICOM Comprehensive SR per film that "
            "came as DICOM, written into --out"
        ),
    )
    export.add_argument("--out", type=Path, help="the folder for --format dicom-sr")
    export.set_defaults(handler=_export)

    rotate = commands.add_parser(
        "rotate-master-key", help="re-wrap every data key with a new master key"
    )
    rotate.add_argument("--new-key-file", type=Path, help="file holding the new base64 key")
    rotate.add_argument("--print-key", action="store_true", help="print the new key on stdout")
    rotate.set_defaults(handler=_rotate)

    user_key = commands.add_parser(
        "rotate-user-key",
        help="give users a new data key and re-seal their records and images under it",
    )
    who = user_key.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="the account whose key to rotate")
    who.add_argument("--all", action="store_true", help="every account with a data key")
    user_key.set_defaults(handler=_rotate_user_key)

    verify = commands.add_parser("verify-audit", help="check the audit trail's hash chain")
    verify.set_defaults(handler=_verify)
    maintenance.add_commands(commands, OPERATOR)
    return parser


def _create_user(db: Database, args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\r\n")
    actor = accounts.operator_create_user(db, args.name, password, args.role)
    print(f"created {actor.role} {actor.username} (id {actor.user_id})")
    return 0


def _import_scan(db: Database, args: argparse.Namespace) -> int:
    actor = accounts.find_actor(db, args.user)
    classifier, why_not = _classifier()
    paths: list[Path] = args.files
    if len(paths) == 1 and _is_medium(paths[0]):
        return _import_medium(db, actor, paths[0], classifier, why_not, args)
    with tqdm(total=len(paths), unit="file", disable=None) as bar:

        def report(done: int, total: int, outcome: ImportedScan) -> None:
            bar.update()

        imported = import_scans(
            db,
            actor,
            [ScanFile(path.name, path.read_bytes, args.view) for path in paths],
            classifier,
            scan_date=args.date,
            on_progress=report,
        )
    # Printed from the report, whose outcomes carry each scan's reading (the progress
    # callback's do not yet: a reading is read with the whole record, after the last file).
    for path, outcome in zip(paths, imported.items, strict=True):
        print(_outcome_line(path, outcome, why_not))
    return 0 if imported.all_ok else EXIT_FAILED_FILES


def _is_medium(path: Path) -> bool:
    return path.is_dir() or path.name.upper() == "DICOMDIR" or zipfile.is_zipfile(path)


def _import_medium(
    db: Database,
    actor: Actor,
    path: Path,
    classifier: Classifier | None,
    why_not: str | None,
    args: argparse.Namespace,
) -> int:
    check = check_media(db, actor, path)
    for sentence in check.listing.skipped:
        print(sentence)
    chosen = check.listing.preselected
    print(
        f"{plural(len(check.listing.series), 'series')} found; importing the "
        f"{plural(len(chosen), 'chest radiograph series')} "
        f"({plural(sum(one.image_count for one in chosen), 'film')})."
    )
    if check.needs_confirmation and not args.confirm_identity:
        for doubt in check.doubts:
            print(f"error: {doubt}", file=sys.stderr)
        print(
            "error: these films may be of someone else; check them and give --confirm-identity",
            file=sys.stderr,
        )
        return EXIT_FAILED_FILES
    total = sum(one.image_count for one in chosen)
    with tqdm(total=total, unit="file", disable=None) as bar:

        def report(done: int, count: int, outcome: ImportedScan) -> None:
            bar.update()

        imported = import_media(
            db,
            actor,
            path,
            chosen,
            classifier,
            identity_confirmed=args.confirm_identity,
            on_progress=report,
            fallback_date=args.date,
        )
    for outcome in imported.items:  # with their readings, as in :func:`_import_scan`
        print(_outcome_line(Path(outcome.filename), outcome, why_not))
    print(imported.summary)
    return 0 if imported.all_ok else EXIT_FAILED_FILES


def _view_argument(value: str) -> View:
    try:
        return parse_view(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _classifier() -> tuple[Classifier | None, str | None]:
    # Imported here: the model layer loads torch, which only this command needs.
    from models.inference import ModelUnavailable, load_classifier

    try:
        return load_classifier(), None
    except ModelUnavailable as exc:
        return None, str(exc)


def _outcome_line(path: Path, outcome: ImportedScan, why_not: str | None) -> str:
    if not outcome.ok:
        hint = " Give --view (PA, AP, 'AP supine', lateral or unknown)."
        missing_view = outcome.error_code == MissingScanView.code
        return f"FAILED {path}: {outcome.error}" + (hint if missing_view else "")
    if outcome.already_saved:
        return " ".join([f"kept {path}: scan {outcome.scan_id}", *outcome.notes])
    line = _stored_line(path, outcome, why_not)
    return " ".join([line, *outcome.notes])


def _stored_line(path: Path, outcome: ImportedScan, why_not: str | None) -> str:
    view = outcome.view.value if outcome.view is not None else View.UNKNOWN.value
    stored = f"stored {path} as scan {outcome.scan_id} (view {view})"
    if outcome.result is None and is_frontal(view):
        return f"{stored} without a result ({why_not})"
    reading = outcome.reading
    if reading is None or not is_frontal(view):  # the notes say why it is not scored
        return stored
    # The same headline every page shows for this scan.
    return f"{stored}: {reading.headline}"


def _export(db: Database, args: argparse.Namespace) -> int:
    if args.format == "dicom-sr" and args.out is None:
        print("error: --format dicom-sr writes files: give --out DIR", file=sys.stderr)
        return 1
    actor = accounts.find_actor(db, args.user)
    classifier, why_not = _classifier()
    if classifier is None:
        print(f"note: {why_not}; each scan's latest result is read", file=sys.stderr)
    if args.format == "fhir":
        from services.fhir import fhir_bundle_json  # fhir.resources only for this format

        sys.stdout.write(fhir_bundle_json(db, actor, classifier) + "\n")
        return 0
    if args.format == "dicom-sr":
        return _export_sr(db, actor, classifier, args.out)
    json.dump(export_records(db, actor, classifier), sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    return 0


def _export_sr(db: Database, actor: Actor, classifier: Classifier | None, out: Path) -> int:
    # highdicom only for this format.
    from services.dicom_sr import patient_srs, write_srs

    export = patient_srs(db, actor, actor.user_id, classifier)
    for item, paths in zip(export.files, write_srs(export, out), strict=True):
        print(f"wrote {paths[0]}: scan {item.scan_id} ({item.label})")
        for path in paths[1:]:
            print(f"wrote {path}: where the model looked for a flagged finding")
    for scan_id, label, reason in export.skipped:
        print(f"skipped scan {scan_id} ({label}): {reason}")
    print(f"{len(export.files)} SR files in {out}")
    return 0


def _rotate(db: Database, args: argparse.Namespace) -> int:
    given = None
    if args.new_key_file is not None:
        given = crypto.decode_master_key(args.new_key_file.read_text())
    if given is None and db.settings.master_key is not None and not args.print_key:
        # With MASTER_KEY set, a generated key exists nowhere else: it must be shown.
        print("error: MASTER_KEY is set; give --new-key-file or --print-key", file=sys.stderr)
        return 1
    rotation = rotate_master_key(db, given, operator=OPERATOR)
    print(f"re-wrapped {rotation.rewrapped} data keys")
    if args.print_key:
        print(f"new master key: {crypto.encode_master_key(rotation.new_key)}")
    if not rotation.key_file_replaced:
        print("set MASTER_KEY to the new key before the next start; the old key opens nothing now")
    return 0


def _rotate_user_key(db: Database, args: argparse.Namespace) -> int:
    for account in rekey.accounts(db, None if args.all else args.user):
        with tqdm(desc=account.username, unit="record", disable=None) as bar:

            def report(done: int, total: int, bar: tqdm = bar) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            rotation = rotate_user_key(db, account, operator=OPERATOR, on_progress=report)
        print(
            f"{rotation.username}: key version {rotation.key_version}, re-sealed "
            f"{rotation.records} records ({rotation.images} images)"
        )
    return 0


def _verify(db: Database, args: argparse.Namespace) -> int:
    report = audit.verify_chain(db)
    if report.ok:
        print(f"audit trail intact: {report.checked} events")
        return 0
    where = f"event id {report.first_bad_id}" if report.first_bad_id is not None else "chain head"
    print(f"audit trail BROKEN at {where}: {report.reason} ({report.checked} events verified)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
