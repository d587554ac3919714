"""Labels and patient-grouped splits of the training data."""

from collections import Counter

import numpy as np

from models.data import load_manifest, patient_id, split_examples


def test_patient_ids_from_file_names():
    assert patient_id("kermany", "kermany/train/PNEUMONIA/person1000_bacteria_2931.jpeg") == "kermany:person1000"
    assert patient_id("kermany", "kermany/train/NORMAL/IM-0115-0001.jpeg") == "kermany:IM-0115"
    assert patient_id("kermany", "kermany/train/NORMAL/NORMAL2-IM-0527-0001.jpeg") == "kermany:NORMAL2-IM-0527"
    assert patient_id("covid_radiography", "covid_radiography/train/COVID/COVID-1.jpeg").endswith("COVID-1.jpeg")


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
