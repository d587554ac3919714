"""Labels and patient-grouped splits of the training data."""

from collections import Counter

import numpy as np

from models.data import load_manifest, patient_id, split_examples


def test_patient_ids_from_file_names():
    assert (
        patient_id("kermany", "kermany/train/PNEUMONIA/person1000_bacteria_2931.jpeg")
        == "kermany:person1000"
    )
    assert patient_id("kermany", "kermany/train/NORMAL/IM-0115-0001.jpeg") == "kermany:IM-0115"
    assert (
        patient_id("kermany", "kermany/train/NORMAL/NORMAL2-IM-0527-0001.jpeg")
        == "kermany:NORMAL2-IM-0527"
    )
    assert patient_id("covid_radiography", "covid_radiography/train/COVID/COVID-1.jpeg").endswith(
        "COVID-1.jpeg"
    )


def test_labels_follow_the_issue(shared_data):
    examples = {e.subtype: e for e in load_manifest(shared_data)}
    np.testing.assert_array_equal(examples["bacterial"].target, [1, 1, 0, 0])
    np.testing.assert_array_equal(examples["viral"].target, [1, 0, 1, 0])
    np.testing.assert_array_equal(examples["covid"].target, [0, 0, 0, 1])
    np.testing.assert_array_equal(examples["covid"].mask, [0, 0, 0, 1])


def test_no_patient_on_two_sides_and_test_untouched(shared_data):
    splits = split_examples(load_manifest(shared_data), seed=20261122)
    fit = {e.patient for e in splits["fit"]}
    validation = {e.patient for e in splits["validation"]}
    assert not fit & validation
    assert all(e.split == "test" for e in splits["test"])
    assert not any(e.split == "test" for e in splits["fit"] + splits["validation"])
    kermany_validation = Counter(e.subtype for e in splits["validation"] if e.source == "kermany")
    assert set(kermany_validation) == {"normal", "bacterial", "viral"}


def test_nih_adult_films_are_covid_negatives_without_subtype(shared_data):
    nih = [e for e in load_manifest(shared_data) if e.source == "nih_adult"]
    assert len(nih) == 533
    by_subtype = {e.subtype: e for e in nih}
    np.testing.assert_array_equal(by_subtype["pneumonia"].target, [1, 0, 0, 0])
    np.testing.assert_array_equal(by_subtype["pneumonia"].mask, [1, 0, 0, 1])
    np.testing.assert_array_equal(by_subtype["normal"].target, [0, 0, 0, 0])
    np.testing.assert_array_equal(by_subtype["normal"].mask, [1, 1, 1, 1])
    assert all(e.age is not None for e in nih)
    assert {e.population for e in nih if e.age >= 18} == {"adult"}
    assert {e.population for e in nih if e.age < 18} == {"child"}


def test_nih_splits_follow_the_publisher_and_keep_patients_apart(shared_data):
    splits = split_examples(load_manifest(shared_data), seed=20261122)
    counts = {
        name: sum(e.source == "nih_adult" for e in examples) for name, examples in splits.items()
    }
    assert counts == {"fit": 307, "validation": 104, "test": 122}
    patients = {
        name: {e.patient for e in examples if e.source == "nih_adult"}
        for name, examples in splits.items()
    }
    assert not patients["fit"] & patients["test"] and not patients["validation"] & patients["test"]
    assert patient_id("nih_adult", "nih_adult/train/Pneumonia/00000061_012.jpeg") == "nih_adult:61"


def test_population_from_source_where_age_is_unknown(shared_data):
    examples = load_manifest(shared_data)
    assert {e.population for e in examples if e.source == "kermany"} == {"child"}
    assert {e.population for e in examples if e.source == "covid_radiography"} == {"adult"}
