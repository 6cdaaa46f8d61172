"""The body measurements the service models, with their ANSUR II source and plausible human range.

Lengths, breadths and circumferences are in millimetres (as in ANSUR II); weight is in kilograms.
The order of ``MEASUREMENTS`` is the order of every measurement vector the models read and write.
The human ranges are deliberately wider than anything in the survey: they reject typing mistakes
(a height in centimetres, a weight in pounds), not unusual bodies.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Measurement:
    """One body measurement: its name, unit, source column in ANSUR II and accepted range."""

    name: str
    unit: str
    ansur_column: str
    description: str
    human_min: float
    human_max: float


MEASUREMENTS: tuple[Measurement, ...] = (
    Measurement("stature", "mm", "stature", "Standing height, floor to top of head.", 1200.0, 2300.0),
    Measurement("weight", "kg", "weightkg", "Body weight (ANSUR stores tenths of a kilogram).", 30.0, 250.0),
    Measurement(
        "chest_circumference", "mm", "chestcircumference",
        "Horizontal circumference of the chest at the nipples (bust point).", 550.0, 1900.0,
    ),
    Measurement(
        "waist_circumference", "mm", "waistcircumference",
        "Horizontal circumference of the waist at the navel (omphalion).", 450.0, 2000.0,
    ),
    Measurement(
        "hip_circumference", "mm", "buttockcircumference",
        "Horizontal circumference of the hips at the maximum protrusion of the buttocks.", 550.0, 1900.0,
    ),
    Measurement(
        "neck_circumference", "mm", "neckcircumference",
        "Circumference of the neck just below the larynx (collar size).", 200.0, 650.0,
    ),
    Measurement(
        "shoulder_breadth", "mm", "biacromialbreadth",
        "Distance between the two acromion points (biacromial breadth).", 220.0, 600.0,
    ),
    Measurement(
        "shoulder_width", "mm", "bideltoidbreadth",
        "Maximum horizontal breadth across the deltoid muscles (visible shoulder width).", 280.0, 800.0,
    ),
    Measurement(
        "sleeve_length", "mm", "sleevelengthspinewrist",
        "Shirt sleeve length: back of the neck over the shoulder and elbow to the wrist.", 450.0, 1300.0,
    ),
    Measurement("inseam", "mm", "crotchheight", "Crotch height: floor to the crotch (trouser inseam).", 450.0, 1250.0),
    Measurement(
        "thigh_circumference", "mm", "thighcircumference",
        "Circumference of the thigh just below the buttock fold.", 320.0, 1100.0,
    ),
    Measurement(
        "calf_circumference", "mm", "calfcircumference",
        "Maximum horizontal circumference of the calf.", 200.0, 700.0,
    ),
    Measurement(
        "ankle_circumference", "mm", "anklecircumference",
        "Minimum circumference of the lower leg just above the ankle bones.", 120.0, 400.0,
    ),
    Measurement(
        "bicep_circumference", "mm", "bicepscircumferenceflexed",
        "Circumference of the upper arm over the flexed biceps.", 170.0, 650.0,
    ),
    Measurement(
        "wrist_circumference", "mm", "wristcircumference",
        "Circumference of the wrist at the styloid processes.", 90.0, 300.0,
    ),
    Measurement(
        "chest_breadth", "mm", "chestbreadth",
        "Horizontal breadth of the chest at the nipples, seen from the front.", 160.0, 480.0,
    ),
    Measurement(
        "waist_breadth", "mm", "waistbreadth",
        "Horizontal breadth of the waist at the navel, seen from the front.", 150.0, 600.0,
    ),
    Measurement(
        "hip_breadth", "mm", "hipbreadth",
        "Maximum horizontal breadth of the hips, seen from the front.", 200.0, 650.0,
    ),
    Measurement(
        "shoulder_height", "mm", "acromialheight",
        "Floor to the acromion (shoulder point), standing.", 850.0, 2050.0,
    ),
    Measurement(
        "neck_height", "mm", "cervicaleheight",
        "Floor to the cervicale (base of the neck at the back), standing.", 900.0, 2150.0,
    ),
    Measurement(
        "waist_height", "mm", "waistheightomphalion",
        "Floor to the waist at the navel (omphalion), standing.", 600.0, 1550.0,
    ),
    Measurement(
        "knee_height", "mm", "kneeheightmidpatella",
        "Floor to the middle of the kneecap, standing.", 270.0, 750.0,
    ),
)

BY_NAME: dict[str, Measurement] = {measurement.name: measurement for measurement in MEASUREMENTS}

NAMES: tuple[str, ...] = tuple(measurement.name for measurement in MEASUREMENTS)

REQUIRED: tuple[str, ...] = ("stature", "weight")

SEXES: tuple[str, ...] = ("female", "male")
