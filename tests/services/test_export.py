"""The user's export (services.export): each scan's view and each result's validity."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from core.imaging import decode_scan
from core.views import View
from services.export import export_records
from services.imports import save_decoded_scan, score_if_frontal
from storage.profile import set_birth_year

JPEG = "16747_3_1.jpg"


def test_export_carries_views_and_the_validity_of_each_result(
    database, make_user, classifier, samples_dir: Path
) -> None:
    alice = make_user("alice")
    scan = decode_scan((samples_dir / JPEG).read_bytes(), JPEG)
    for view in (View.PA, View.LATERAL):
        save_decoded_scan(
            database,
            alice,
            scan,
            scan_date=date(2026, 1, 5),
            filename=f"{view.value}.jpg",
            view=view,
            result=score_if_frontal(classifier, scan, view),
        )

    unknown_age = export_records(database, alice)
    set_birth_year(database, alice, 1970)
    adult = export_records(database, alice)

    assert [(s["view"], len(s["results"])) for s in adult["scans"]] == [("PA", 1), ("lateral", 0)]
    [before] = unknown_age["scans"][0]["results"]
    [after] = adult["scans"][0]["results"]
    assert not after["abstained"]  # a real adult frontal film the model reads
    assert set(after["validity"]) == set(after["probabilities"])
    # Without an age nothing is judged; each number still says whom it was learned from.
    assert {v["valid"] for v in before["validity"].values()} == {None}
    assert {v["population"] for v in after["validity"].values()} == {"adult"}
    assert {v["valid"] for v in after["validity"].values()} <= {True, False}
