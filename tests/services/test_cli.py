"""The command line (services.cli): its commands run in-process (the ``cli`` fixture of
tests/services/conftest.py), and both documented module names start for real.

``python -m storage.cli`` is the name the README gives; ``python -m services.cli`` is the same.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import sqlalchemy as sa

from core.settings import PROJECT_ROOT, load_settings
from storage import accounts, crypto
from storage.bootstrap import open_database
from tests.services.conftest import SHIPPED_CHECKPOINT
from tests.storage._factories import save_sample_scan
from tests.storage.conftest import PASSWORD, env_for


def _start(
    env: dict[str, str], module: str, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` as a real process, with ``env`` added to the environment."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        input=stdin,
        env={**os.environ, **env, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROJECT_ROOT,
    )


def test_create_user_then_export(cli, settings_env) -> None:
    created = cli(
        settings_env, "create-user", "Dr.Who", "--role", "clinician", stdin=PASSWORD + "\n"
    )
    assert created.returncode == 0, created.stderr
    assert "created clinician dr.who" in created.stdout
    exported = cli(settings_env, "export", "--user", "dr.who")
    assert exported.returncode == 0, exported.stderr
    data = json.loads(exported.stdout)
    assert data["user"]["role"] == "clinician" and data["scans"] == []


def test_create_user_refuses_weak_password(cli, settings_env) -> None:
    result = cli(settings_env, "create-user", "alice", stdin="password\n")
    assert result.returncode == 1
    assert "too common" in result.stderr


def test_import_scan_stores_each_file_and_reports_failures(
    cli, settings_env, samples_dir, tmp_path
) -> None:
    cli(settings_env, "create-user", "alice", stdin=PASSWORD + "\n")
    broken = tmp_path / "notes.txt"
    broken.write_text("not an image")
    files = [samples_dir / "00000001_000.png", samples_dir / "Fake_MONOHR1.dcm", broken]
    env = {**settings_env, "MODEL_CHECKPOINT": str(tmp_path / "missing.pt")}

    result = cli(env, "import-scan", "--user", "alice", "--date", "2024-05-06", *map(str, files))

    assert result.returncode == 2, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3
    # A PNG says nothing about its view: refused without --view, nothing stored.
    assert lines[0].startswith("FAILED") and "Give --view" in lines[0]
    # The real CR DICOM's View Position (0018,5101) is PA.
    assert lines[1].startswith("stored") and "(view PA)" in lines[1]
    assert "without a result" in lines[1]
    assert lines[2].startswith("FAILED") and "notes.txt" in lines[2]
    data = json.loads(cli(settings_env, "export", "--user", "alice").stdout)
    assert [s["filename"] for s in data["scans"]] == ["Fake_MONOHR1.dcm"]
    assert data["scans"][0]["scan_date"] == "2024-05-06"
    assert data["scans"][0]["view"] == "PA"
    assert data["scans"][0]["metadata"]["source_format"] == "dicom"
    assert data["scans"][0]["results"] == []


def test_import_scan_view_option_unknown_lateral_and_header_override(
    cli, settings_env, samples_dir
) -> None:
    cli(settings_env, "create-user", "alice", stdin=PASSWORD + "\n")
    png, dicom = samples_dir / "00000001_000.png", samples_dir / "Fake_MONOHR1.dcm"
    other_png = samples_dir / "00027426_000.png"
    base = ["import-scan", "--user", "alice", "--date", "2024-05-06"]

    unknown = cli(settings_env, *base, "--view", "unknown", str(png))
    lateral = cli(settings_env, *base, "--view", "lateral", str(dicom))
    frontal = cli(settings_env, *base, "--view", "pa", str(other_png))
    bad = cli(settings_env, *base, "--view", "sideways", str(png))

    assert unknown.returncode == 0, unknown.stderr
    assert "(view unknown)" in unknown.stdout and "not scored" in unknown.stdout
    assert lateral.returncode == 0, lateral.stderr
    assert "(view lateral)" in lateral.stdout
    assert 'The file says its view is "Frontal (PA, standing)"' in lateral.stdout
    assert "Side (lateral) views are kept in your record but not scored" in lateral.stdout
    assert frontal.returncode == 0, frontal.stderr
    assert "(view PA)" in frontal.stdout and "without a result" not in frontal.stdout
    assert bad.returncode == 2 and "Unknown view 'sideways'" in bad.stderr
    data = json.loads(cli(settings_env, "export", "--user", "alice").stdout)
    assert [(s["view"], len(s["results"])) for s in data["scans"]] == [
        ("unknown", 0),
        ("lateral", 0),
        ("PA", 1),
    ]
    [result] = data["scans"][2]["results"]
    if not result["abstained"]:
        assert set(result["validity"]) == set(result["probabilities"])
        assert all(
            set(v) == {"population", "valid", "learned_from", "note"}
            for v in result["validity"].values()
        )


def test_verify_audit_detects_tampering(cli, settings_env) -> None:
    cli(settings_env, "create-user", "alice", stdin=PASSWORD + "\n")
    assert cli(settings_env, "verify-audit").returncode == 0
    engine = sa.create_engine(settings_env["DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET actor_username = 'mallory' WHERE seq = 1"))
    engine.dispose()
    result = cli(settings_env, "verify-audit")
    assert result.returncode == 1
    assert "BROKEN at event id" in result.stdout


def test_verify_audit_detects_an_old_head_put_back_after_deleting_later_events(
    cli,
    settings_env,
) -> None:
    """Issue 22's attack on the trail from the command line: start-up and verify-audit say so."""
    cli(settings_env, "create-user", "alice", stdin=PASSWORD + "\n")
    engine = sa.create_engine(settings_env["DATABASE_URL"])
    with engine.begin() as conn:
        head = conn.execute(sa.text("SELECT seq, hash, mac FROM audit_head")).mappings().one()
    cli(settings_env, "create-user", "bob", stdin=PASSWORD + "\n")
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_events WHERE seq > :seq"), dict(head))
        conn.execute(
            sa.text("UPDATE audit_head SET seq = :seq, hash = :hash, mac = :mac"), dict(head)
        )
    engine.dispose()
    result = cli(settings_env, "verify-audit")
    assert result.returncode == 1
    assert "BROKEN at chain head" in result.stdout and "were removed" in result.stdout
    assert "does not match its anchors" in result.stderr


def test_rotate_master_key_with_key_file(cli, settings_env) -> None:
    env = {k: v for k, v in settings_env.items() if k != "MASTER_KEY"}
    cli(env, "create-user", "alice", stdin=PASSWORD + "\n")
    key_file = load_settings(env).key_file
    old_key = key_file.read_text()

    rotated = cli(env, "rotate-master-key")

    assert rotated.returncode == 0, rotated.stderr
    new_key = key_file.read_text()
    assert new_key != old_key
    assert new_key.strip() not in rotated.stdout + rotated.stderr
    assert json.loads(cli(env, "export", "--user", "alice").stdout)["user"]["username"] == "alice"
    with pytest.raises(crypto.DecryptionError):
        open_database(load_settings({**env, "MASTER_KEY": old_key.strip()}))
    assert cli(env, "verify-audit").returncode == 0


def test_rotate_master_key_prints_the_new_key_only_when_asked(cli, settings_env) -> None:
    env = {k: v for k, v in settings_env.items() if k != "MASTER_KEY"}
    cli(env, "create-user", "alice", stdin=PASSWORD + "\n")

    rotated = cli(env, "rotate-master-key", "--print-key")

    assert rotated.returncode == 0, rotated.stderr
    assert load_settings(env).key_file.read_text().strip() in rotated.stdout


def test_rotate_with_master_key_in_the_environment_refuses_to_lose_the_new_key(
    cli,
    settings_env,
) -> None:
    cli(settings_env, "create-user", "alice", stdin=PASSWORD + "\n")

    refused = cli(settings_env, "rotate-master-key")

    assert refused.returncode == 1
    assert "--print-key" in refused.stderr
    assert cli(settings_env, "export", "--user", "alice").returncode == 0


def test_rotate_master_key_from_new_key_file(cli, settings_env, tmp_path) -> None:
    cli(settings_env, "create-user", "alice", stdin=PASSWORD + "\n")
    new_key = crypto.encode_master_key(crypto.new_master_key())
    key_path = tmp_path / "new.key"
    key_path.write_text(new_key)

    rotated = cli(settings_env, "rotate-master-key", "--new-key-file", str(key_path))

    assert rotated.returncode == 0, rotated.stderr
    assert new_key not in rotated.stdout
    assert cli(settings_env, "export", "--user", "alice").returncode != 0
    new_env = {**settings_env, "MASTER_KEY": new_key}
    assert cli(new_env, "export", "--user", "alice").returncode == 0
    assert cli(new_env, "verify-audit").returncode == 0


def test_rotate_user_key_for_one_user_then_all(cli, settings_env) -> None:
    db = open_database(load_settings(settings_env))
    try:
        alice = accounts.register(db, "alice", PASSWORD)
        save_sample_scan(db, alice)
    finally:
        db.close()

    one = cli(settings_env, "rotate-user-key", "--user", "alice")
    assert one.returncode == 0, one.stderr
    assert "alice: key version 2, re-sealed 2 records (1 images)" in one.stdout
    every = cli(settings_env, "rotate-user-key", "--all")
    assert every.returncode == 0, every.stderr
    assert "alice: key version 3" in every.stdout and "admin: key version 2" in every.stdout
    unknown = cli(settings_env, "rotate-user-key", "--user", "nobody")
    assert unknown.returncode == 1 and "No account is named 'nobody'" in unknown.stderr
    exported = json.loads(cli(settings_env, "export", "--user", "alice").stdout)
    assert [scan["filename"] for scan in exported["scans"]] == ["chest_front.png"]
    engine = sa.create_engine(settings_env["DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE seal_versions SET row_version = row_version - 1"))
    engine.dispose()
    refused = cli(settings_env, "rotate-user-key", "--user", "alice")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "not the versions the database last committed" in refused.stderr


def test_both_module_names_start_the_same_command_line(cli, tmp_path) -> None:
    """The one test that starts Python: each documented module name runs ``main`` for real.

    It does not depend on the database, so it runs on SQLite only.
    """
    env = env_for(f"sqlite:///{tmp_path / 'app.db'}", tmp_path / "data")
    moved = _start(env, "services.cli", "--help")
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout == cli(env, "--help").stdout
    for command in ("create-user", "import-scan", "export", "rotate-master-key", "verify-audit"):
        assert command in moved.stdout
    created = _start(env, "storage.cli", "create-user", "bob", stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    assert "created patient bob" in created.stdout
    exported = cli(env, "export", "--user", "bob")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["user"]["username"] == "bob"


def test_import_scan_with_the_model_prints_each_scans_headline(
    cli, settings_env, samples_dir
) -> None:
    cli(settings_env, "create-user", "alice", stdin=PASSWORD + "\n")
    flagged, negative = samples_dir / "16747_3_1.jpg", samples_dir / "Fake_MONOHR1.dcm"
    env = {**settings_env, "MODEL_CHECKPOINT": str(SHIPPED_CHECKPOINT)}

    result = cli(
        env,
        *("import-scan", "--user", "alice", "--date", "2024-05-06", "--view", "PA"),
        *(str(flagged), str(negative)),
    )

    assert result.returncode == 0, result.stderr
    first, second = result.stdout.strip().splitlines()
    # The headline every page shows: the flagged findings with their values and levels.
    assert re.fullmatch(
        rf"stored {re.escape(str(flagged))} as scan \d+ \(view PA\): "
        r"Above (its|their) levels?: .*COVID-19-like pattern \d+% \(level \d+%\).*\.",
        first,
    ), first
    assert "strongest" not in first
    # The negative film is stored, but the model was unsure: its reason, no number.
    assert second.startswith(
        f"stored {negative} as scan "
    ) and "(view PA): No result is shown for this film: this image looks like a negative" in (
        second
    )
    assert not re.search(r"\d+%", second), second
