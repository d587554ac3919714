"""Command-line administration: ``python -m storage.cli --help``.

Every command honours ``DATA_DIR``, ``DATABASE_URL`` and ``MASTER_KEY`` like the app.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import date
from pathlib import Path

from core.settings import load_settings
from storage import accounts, audit, crypto, records
from storage.db import Database

EXIT_FAILED_FILES = 2


def main(argv: list[str] | None = None) -> int:
    """Run one command.

    Args:
        argv: Arguments (defaults to ``sys.argv[1:]``).

    Returns:
        Process exit status.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    args = _parser().parse_args(argv)
    db = Database.open(load_settings())
    try:
        return args.handler(db, args)
    except (accounts.AccountError, accounts.PasswordPolicyError, crypto.MasterKeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m storage.cli", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    create = commands.add_parser("create-user", help="create an account (password read from stdin)")
    create.add_argument("name")
    create.add_argument("--role", default="patient",
                        choices=["patient", "clinician", "analyst", "admin"])
    create.set_defaults(handler=_create_user)

    scan = commands.add_parser("import-scan", help="decode, classify and store scans for a patient")
    scan.add_argument("--user", required=True)
    scan.add_argument("--date", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
    scan.add_argument("files", nargs="+", type=Path, metavar="FILE")
    scan.set_defaults(handler=_import_scan)

    export = commands.add_parser("export", help="print a user's decrypted records as JSON")
    export.add_argument("--user", required=True)
    export.set_defaults(handler=_export)

    rotate = commands.add_parser("rotate-master-key", help="re-wrap every data key with a new master key")
    rotate.add_argument("--new-key-file", type=Path, help="file holding the new base64 key")
    rotate.set_defaults(handler=_rotate)

    verify = commands.add_parser("verify-audit", help="check the audit trail's hash chain")
    verify.set_defaults(handler=_verify)
    return parser


def _create_user(db: Database, args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\r\n")
    actor = accounts.operator_create_user(db, args.name, password, args.role)
    print(f"created {actor.role} {actor.username} (id {actor.user_id})")
    return 0


def _import_scan(db: Database, args: argparse.Namespace) -> int:
    from core.enhance import EnhanceSettings
    from core.imaging import ScanError, decode_scan

    actor = accounts.find_actor(db, args.user)
    classifier, why_not = _classifier()
    settings = EnhanceSettings()
    failed = 0
    for path in args.files:
        try:
            scan = decode_scan(path.read_bytes(), path.name, max_bytes=db.settings.max_upload_bytes)
            result = _classify(classifier, scan) if classifier is not None else None
            scan_id = records.save_scan(
                db, actor, pixels=scan.pixels, metadata=scan.metadata.to_dict(),
                enhancement=settings.to_dict(), scan_date=args.date, filename=path.name,
                result=result,
            )
        except (OSError, ScanError, ValueError, PermissionError) as exc:
            failed += 1
            print(f"FAILED {path}: {exc}")
            continue
        print(f"stored {path} as scan {scan_id}" + _result_text(result, why_not))
    return EXIT_FAILED_FILES if failed else 0


def _classifier():
    from models.inference import ModelUnavailable, load_classifier

    try:
        return load_classifier(), None
    except ModelUnavailable as exc:
        return None, str(exc)


def _classify(classifier, scan) -> records.ResultIn:
    return records.ResultIn.from_prediction(classifier.predict([scan])[0], classifier.info)


def _result_text(result: records.ResultIn | None, why_not: str | None) -> str:
    if result is None:
        return f" without a result ({why_not})"
    if result.abstained:
        return " (the model abstained)"
    name = max(result.probabilities, key=result.probabilities.__getitem__)
    return f" (top finding {name} {result.probabilities[name]:.2f})"


def _export(db: Database, args: argparse.Namespace) -> int:
    actor = accounts.find_actor(db, args.user)
    json.dump(records.export_user(db, actor), sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    return 0


def _rotate(db: Database, args: argparse.Namespace) -> int:
    if args.new_key_file is not None:
        new = crypto.decode_master_key(args.new_key_file.read_text())
    else:
        new = crypto.new_master_key()
    settings = db.settings
    pending = settings.key_file.with_name(settings.key_file.name + ".new")
    uses_key_file = settings.master_key is None
    if uses_key_file:
        # Written before the commit so the new key exists wherever the database uses it.
        crypto.write_key_file(pending, new)
    count = db.rotate_master_key(new)
    if uses_key_file:
        pending.replace(settings.key_file)
    with db.transaction() as session:
        audit.append(session, db, "rotate_master_key", actor_username="(command line)",
                     details={"keys": count})
    print(f"re-wrapped {count} data keys")
    if args.new_key_file is None:
        print(f"new master key (shown once): {crypto.encode_master_key(new)}")
    if not uses_key_file:
        print("set MASTER_KEY to the new key before the next start; the old key opens nothing now")
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
