"""Reads are audited once per viewing (a page visit or a teleconsult), not at every rerun."""

from __future__ import annotations

import json

from sqlmodel import col, select
from streamlit.testing.v1 import AppTest

from storage import schema, sharing
from storage.access_log import access_log
from storage.actor import Actor
from storage.audit import verify_chain
from storage.db import Database
from tests.pages._flows import PROJECT_ROOT, TIMEOUT_S, World, log_in, page


def _viewings(db: Database, action: str, patient: Actor) -> list[str | None]:
    """The viewing of each ``action`` event about ``patient``, oldest first."""
    with db.transaction() as session:
        rows = session.exec(
            select(schema.AuditEvent.details)
            .where(schema.AuditEvent.action == action)
            .where(schema.AuditEvent.patient_id == patient.user_id)
            .order_by(col(schema.AuditEvent.seq))
        ).all()
    return [json.loads(row).get("viewing") for row in rows]


def test_timeline_reruns_add_one_read_per_visit(world: World) -> None:
    at = AppTest.from_file(str(PROJECT_ROOT / "streamlit_app.py"), default_timeout=TIMEOUT_S)
    log_in(at, world.alice)
    at.run().switch_page("pages/timeline.py").run()
    assert not at.exception
    for margin in (10, 20, 30, 40, 50):  # five reruns: moving the timeline's slider
        at.slider(key="timeline_margin").set_value(margin).run()
        assert not at.exception
    [visit] = _viewings(world.db, "list_scans", world.alice)
    assert visit is not None
    assert _viewings(world.db, "read_birth_year", world.alice) == [visit]
    # Another page, then the Timeline again: a new visit, one more read each.
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/timeline.py").run()
    at.slider(key="timeline_margin").set_value(25).run()
    assert not at.exception
    visits = _viewings(world.db, "list_scans", world.alice)
    assert len(visits) == 2 and visits[1] not in (None, visit)
    assert _viewings(world.db, "read_birth_year", world.alice) == visits
    assert verify_chain(world.db).ok


def test_a_teleconsult_is_one_viewing(world: World) -> None:
    sharing.grant_access(world.db, world.alice, "dr_bob", hours=2)
    at = page("teleconsult.py", world.dr_bob).run()
    at.button(key="start_session").click().run()
    assert not at.exception
    for margin in (10, 20, 30):
        at.slider(key="tc_timeline_margin").set_value(margin).run()
        assert not at.exception
    [visit] = _viewings(world.db, "list_scans", world.alice)
    assert visit is not None and visit.startswith("teleconsult-")
    assert _viewings(world.db, "read_birth_year", world.alice) == [visit]
    # The patient's access log still names the clinician's reads.
    log = access_log(world.db, world.alice, world.alice.user_id)
    assert ("dr_bob", "list_scans") in [(e.actor_username, e.action) for e in log]
