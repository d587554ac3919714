"""The Account page's key renewal: a patient re-seals their own records from the page."""

from __future__ import annotations

import sqlalchemy as sa

from storage.scans import list_scans
from tests.pages._flows import World, open_world, page, texts


def _key_versions(world: World) -> set[int]:
    with world.db.engine.begin() as conn:
        return set(
            conn.execute(
                sa.text("SELECT key_version FROM scans WHERE owner_id = :o"),
                {"o": world.alice.user_id},
            ).scalars()
        )


def test_a_patient_renews_their_key_and_every_scan_still_opens(tmp_path, monkeypatch) -> None:
    world = open_world(tmp_path, monkeypatch)
    before = list_scans(world.db, world.alice, world.alice.user_id)
    at = page("account.py", world.alice).run()
    at.button(key="rotate_key").click().run()

    assert not at.exception
    assert "are now encrypted with your new key (version 2)" in texts(at)
    assert _key_versions(world) == {2}
    assert list_scans(world.db, world.alice, world.alice.user_id) == before
