"""The measurement catalogue: names, units and ranges the service validates against."""

from tryon.services.body.measurements import BY_NAME, MEASUREMENTS, NAMES, REQUIRED, SEXES


def test_names_are_unique_snake_case_and_indexed():
    assert len(set(NAMES)) == len(MEASUREMENTS) >= 20
    for name in NAMES:
        assert name == name.lower() and " " not in name
        assert BY_NAME[name].name == name


def test_interface_measurements_are_present():
    expected = {
        "stature", "weight", "chest_circumference", "waist_circumference", "hip_circumference",
        "neck_circumference", "shoulder_breadth", "sleeve_length", "inseam", "thigh_circumference",
        "calf_circumference",
    }
    assert expected <= set(NAMES)
    assert set(REQUIRED) <= set(NAMES)
    assert SEXES == ("female", "male")


def test_units_and_ranges_are_sensible():
    for measurement in MEASUREMENTS:
        assert measurement.unit == ("kg" if measurement.name == "weight" else "mm")
        assert 0 < measurement.human_min < measurement.human_max
    assert BY_NAME["stature"].human_min <= 1200 and BY_NAME["stature"].human_max >= 2300
    assert BY_NAME["weight"].human_min <= 30 and BY_NAME["weight"].human_max >= 250
