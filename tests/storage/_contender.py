"""One app process of the contention test: rotates a patient's key, saves a scan and shares.

Run as ``python -m tests.storage._contender ENV_JSON USER_ID USERNAME WORKER OPERATIONS OUT``;
it writes ``[saved scan ids, failures]`` as JSON to OUT, also when it cannot start.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.settings import load_settings
from services.keys import rotate_user_key
from storage import rekey, sharing
from storage.actor import Actor
from storage.bootstrap import open_database
from tests.storage._factories import save_sample_scan


def contend(
    env: dict[str, str], patient: Actor, worker: int, operations: int
) -> tuple[list[int], list[str]]:
    """Runs the operations in turn; returns the saved scan ids and the failures."""
    saved: list[int] = []
    failures: list[str] = []
    db = None
    try:
        db = open_database(load_settings(env), bootstrap_admin=False)
        account = rekey.Account(patient.user_id, patient.username)
        for step in range(operations):
            kind = (step + worker) % 3
            try:
                if kind == 0:
                    rotate_user_key(db, account, by=patient)
                elif kind == 1:
                    saved.append(save_sample_scan(db, patient, seed=worker * 1000 + step))
                else:
                    sharing.grant_access(db, patient, "doc", hours=1)
            except Exception as exc:  # every failure is reported to the test
                failures.append(f"{type(exc).__name__}: {exc}")
    except BaseException as exc:
        # A process that cannot even start still reports, so the test fails with the reason.
        failures.append(f"the process failed: {type(exc).__name__}: {exc}")
    finally:
        if db is not None:
            db.close()
    return saved, failures


def main(argv: list[str]) -> None:
    env_json, user_id, username, worker, operations, out = argv
    patient = Actor(int(user_id), username, "patient")
    saved, failures = contend(json.loads(env_json), patient, int(worker), int(operations))
    Path(out).write_text(json.dumps([saved, failures]))


if __name__ == "__main__":
    main(sys.argv[1:])
