"""The committed ANSUR II subset, its build from the source CSV files and the subject split."""

import io

import pandas as pd

from tryon.services.body import dataset
from tryon.services.body.measurements import BY_NAME, NAMES

FEMALE_CSV = (
    "SubjectId," + ",".join(m.ansur_column for m in BY_NAME.values()) + ",Gender\n"
    + "10037," + ",".join("815" if m.name == "weight" else "1000" for m in BY_NAME.values()) + ",Female\n"
)
MALE_CSV = (
    "subjectid," + ",".join(m.ansur_column for m in BY_NAME.values()) + ",Gender\n"
    + "10027," + ",".join("900" if m.name == "weight" else "1100" for m in BY_NAME.values()) + ",Male\u00e9\n"
)


def test_committed_subset_has_every_subject_and_measurement_in_model_units():
    frame = dataset.load_subset()
    assert len(frame) == 6068
    assert frame["sex"].value_counts().to_dict() == {"male": 4082, "female": 1986}
    assert list(frame.columns) == ["subject_id", "sex", *NAMES]
    assert frame["subject_id"].is_unique
    assert not frame[list(NAMES)].isna().any().any()
    assert 40 < frame["weight"].median() < 120
    assert 1500 < frame["stature"].median() < 1900
    for name in NAMES:
        assert frame[name].between(BY_NAME[name].human_min, BY_NAME[name].human_max).all(), name


def test_build_converts_weight_to_kilograms_and_reads_latin1(tmp_path):
    sources = {"female": FEMALE_CSV.encode("utf-8"), "male": MALE_CSV.encode("latin-1")}
    subset = dataset.build_subset(sources)
    assert subset["subject_id"].tolist() == [10027, 10037]
    assert subset["sex"].tolist() == ["male", "female"]
    assert subset["weight"].tolist() == [90.0, 81.5]
    assert subset["stature"].tolist() == [1100.0, 1000.0]
    out = tmp_path / "subset.csv.gz"
    dataset.write_subset(subset, out)
    first = out.read_bytes()
    dataset.write_subset(subset, out)
    assert out.read_bytes() == first
    assert pd.read_csv(io.BytesIO(first), compression="gzip")["weight"].tolist() == [90.0, 81.5]


def test_split_is_disjoint_deterministic_and_seeded():
    frame = dataset.load_subset()
    split = dataset.split_subjects(frame, seed=3)
    parts = [set(part["subject_id"]) for part in (split.train, split.validation, split.test)]
    assert sum(map(len, parts)) == len(frame)
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert 0.12 < len(parts[2]) / len(frame) < 0.18
    shuffled = dataset.split_subjects(frame.sample(frac=1.0, random_state=1), seed=3)
    assert set(shuffled.test["subject_id"]) == parts[2]
    assert set(dataset.split_subjects(frame, seed=4).test["subject_id"]) != parts[2]
