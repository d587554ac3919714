"""Views on the pages: correcting a view on the timeline, and Compare opening like with like."""

from __future__ import annotations

from sqlmodel import select

from core.views import NOT_SCORED_SENTENCE, View
from storage import schema
from storage.scans import list_scans, update_scan_view
from tests.pages._flows import World, page, texts


def test_marking_a_scan_lateral_takes_it_off_the_timeline_and_is_audited(world: World) -> None:
    april = world.scan_ids[2]
    at = page("timeline.py", world.alice).run()
    at.selectbox(key="view_scan").set_value(april)
    at = at.run()
    # The view shown is the stored one; saving is possible only once another is chosen.
    assert at.radio(key=f"view_value_{april}").value is View.PA
    at.radio(key=f"view_value_{april}").set_value(View.LATERAL)
    at = at.run()
    at.button(key="view_save").click()
    at = at.run()

    assert not at.exception
    text = texts(at)
    assert NOT_SCORED_SENTENCE in text
    # Its old result is kept in the record (Details) but no longer shown, plotted nor flagged.
    table = at.table[0].value
    assert list(table["Scan date"]) == ["1 Apr 2026", "2 Mar 2026", "1 Feb 2026"]
    assert list(table["Status"]) == ["Not scored (view)", "Scored", "Scored"]
    assert list(table["Pneumonia"]) == ["", "12%", "10%"]
    assert list(table["Needs attention"]) == ["", "", ""]
    assert list(at.table[1].value["Pneumonia"]) == ["41%", "12%", "10%"]
    assert '"2026-04-01' not in at.get("plotly_chart")[0].proto.spec
    assert "rose" not in text
    [april_now] = [
        s for s in list_scans(world.db, world.alice, world.alice.user_id) if s.id == april
    ]
    assert april_now.view is View.LATERAL and len(april_now.results) == 1
    with world.db.transaction() as session:
        events = session.exec(
            select(schema.AuditEvent).where(schema.AuditEvent.action == "update_scan_view")
        ).all()
    assert [(e.actor_id, e.record_id) for e in events] == [(world.alice.user_id, april)]


def test_compare_opens_on_one_projection_and_warns_on_a_mixed_pair(world: World) -> None:
    feb, march, april = world.scan_ids
    update_scan_view(world.db, world.alice, march, View.AP)
    at = page("compare.py", world.alice).run()
    assert not at.exception
    # The latest two PA films, february and april, not the AP film between them.
    assert at.selectbox(key="compare_a").value == feb
    assert at.selectbox(key="compare_b").value == april
    assert not any("different projections" in w.value for w in at.warning)

    at.selectbox(key="compare_a").set_value(march)
    at = at.run()
    assert any("different projections" in w.value for w in at.warning)
