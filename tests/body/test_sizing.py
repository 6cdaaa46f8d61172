"""Size advice: fit probabilities, recommended size, deciding measurement and chart validation."""

from __future__ import annotations

import numpy as np
import pytest

from tryon.services.body.measurements import BY_NAME, NAMES
from tryon.services.body.sizing import (
    Size,
    SizeChart,
    SizeRange,
    advise_size,
    fit_profile,
    resolve_chart,
    shipped_charts,
    validate_chart,
)
from tryon.shared.errors import InvalidArgument, NotFound

COLUMN = {name: index for index, name in enumerate(NAMES)}


def body_samples(count: int, seed: int = 0, **normal: tuple[float, float]) -> np.ndarray:
    """Samples with every measurement in the middle of its human range, some drawn from N(mean, sd)."""
    rng = np.random.default_rng(seed)
    samples = np.empty((count, len(NAMES)))
    for name, measurement in BY_NAME.items():
        samples[:, COLUMN[name]] = (measurement.human_min + measurement.human_max) / 2
    for name, (mean, sd) in normal.items():
        samples[:, COLUMN[name]] = rng.normal(mean, sd, count)
    return samples


def test_shipped_charts_load_and_state_their_source():
    charts = shipped_charts()
    assert {"en13402_womens_tops", "en13402_mens_tops", "eu_mens_tops", "us_mens_trousers"} <= set(charts)
    for chart in charts.values():
        assert chart.source and chart.sizes


def test_probability_of_fit_follows_the_normal_distribution_of_the_measurement():
    # Chest ~ N(1000, 20): P(940 <= chest <= 1020) = Phi(1) - Phi(-3) = 0.840, P(1020..1100) = 0.159.
    samples = body_samples(40_000, chest_circumference=(1000.0, 20.0))
    advice = advise_size(shipped_charts()["en13402_mens_tops"], samples)
    fits = {fit.label: fit.probability for fit in advice.fits}
    assert fits["M"] == pytest.approx(0.840, abs=0.01)
    assert fits["L"] == pytest.approx(0.159, abs=0.01)
    assert fits["XS"] == 0.0
    assert advice.recommended_size == "M"
    assert advice.deciding_measurement == "chest_circumference"
    assert [fit.label for fit in advice.fits] == [size.label for size in shipped_charts()["en13402_mens_tops"].sizes]
    assert advice.explanation == (
        "Size M fits with a probability of 84%; your chest circumference decides: it may be larger than this "
        "size is made for (probability 16%). Next most likely: size L (16%)."
    )


def test_deciding_measurement_is_the_one_that_limits_the_fit():
    # Waist is sure to fit 32/32; the inseam is uncertain, so the inseam decides.
    inch = 25.4
    samples = body_samples(
        5_000, waist_circumference=(32 * inch, 2.0), inseam=(32 * inch + 40 + 15.0, 12.0)
    )
    advice = advise_size(shipped_charts()["us_mens_trousers"], samples)
    assert advice.recommended_size == "32/32"
    assert advice.deciding_measurement == "inseam"
    fits = {fit.label: fit.probability for fit in advice.fits}
    assert 0.5 < fits["32/32"] < 0.95
    assert fits["32/34"] > 0.0
    assert fits["32/32"] + fits["32/34"] + fits["32/30"] == pytest.approx(1.0, abs=0.01)


def test_exact_observed_value_gives_certain_fit():
    samples = body_samples(100, chest_circumference=(960.0, 0.0))
    advice = advise_size(shipped_charts()["en13402_mens_tops"], samples)
    assert {fit.label: fit.probability for fit in advice.fits}["M"] == 1.0
    assert advice.explanation == (
        "Size M fits with a probability of 100%; your chest circumference is the closest to the edge of its range."
    )


def test_a_rare_fit_is_not_shown_as_zero_percent():
    # P(chest < 860) = Phi(-2.7) = 0.35%: size S fits with 99.65%, XS with 0.35%.
    samples = body_samples(40_000, chest_circumference=(870.0, 3.7))
    advice = advise_size(shipped_charts()["en13402_mens_tops"], samples)
    assert advice.recommended_size == "S"
    assert advice.explanation.startswith("Size S fits with a probability of over 99%")
    assert "smaller than this size is made for (probability under 1%)" in advice.explanation
    assert "Next most likely: size XS (under 1%)" in advice.explanation


def test_body_outside_every_size_gets_the_closest_size_and_says_so():
    samples = body_samples(200, chest_circumference=(1700.0, 10.0))
    advice = advise_size(shipped_charts()["en13402_mens_tops"], samples)
    assert all(fit.probability == 0.0 for fit in advice.fits)
    assert advice.recommended_size == "3XL"
    assert "No size" in advice.explanation and "above" in advice.explanation


def test_explanation_names_no_measurement_value():
    samples = body_samples(1_000, chest_circumference=(1013.0, 15.0))
    advice = advise_size(shipped_charts()["en13402_mens_tops"], samples)
    assert "1013" not in advice.explanation and "101" not in advice.explanation


def chart_of(*ranges: SizeRange, label: str = "M") -> SizeChart:
    return SizeChart("", (Size(label, ranges),))


@pytest.mark.parametrize(
    ("chart", "field_and_hint"),
    [
        (SizeChart("", ()), "size_chart.sizes is empty"),
        (chart_of(SizeRange("bust", 800, 900)), "known measurements: stature"),
        (chart_of(SizeRange("chest_circumference", 900, 800)), "sizes[0].ranges[0]: min of chest_circumference"),
        (chart_of(SizeRange("chest_circumference", 900, 900)), "must be smaller than max"),
        (chart_of(SizeRange("chest_circumference", float("nan"), 900)), "finite"),
        (chart_of(SizeRange("chest_circumference", 88, 96)), "ranges are in millimetres"),
        (chart_of(label=" "), "label is empty"),
        (chart_of(), "ranges is empty"),
        (
            chart_of(SizeRange("inseam", 700, 800), SizeRange("inseam", 800, 900)),
            "'inseam' appears twice",
        ),
        (
            SizeChart("", (Size("M", (SizeRange("inseam", 700, 800),)), Size("M", (SizeRange("inseam", 800, 900),)))),
            "sizes[1].label 'M' appears twice",
        ),
    ],
)
def test_invalid_inline_chart_is_rejected_with_the_field(chart, field_and_hint):
    with pytest.raises(InvalidArgument, match=None) as error:
        validate_chart(chart)
    assert field_and_hint in str(error.value)


def test_resolve_chart_by_id_inline_or_neither():
    assert resolve_chart("eu_mens_tops", ()).chart_id == "eu_mens_tops"
    inline = (Size("One", (SizeRange("stature", 1500, 1900),)),)
    assert resolve_chart("", inline).sizes == inline
    with pytest.raises(NotFound, match="known charts: en13402_womens_tops"):
        resolve_chart("nope", ())
    with pytest.raises(InvalidArgument, match="not both"):
        resolve_chart("eu_mens_tops", inline)
    with pytest.raises(InvalidArgument, match="give a chart_id"):
        resolve_chart("", ())


def test_a_body_between_two_sizes_says_so_and_which_measurement_pulls_which_way():
    # Chest in the middle of size 40's bust range, waist in the middle of size 38's waist range.
    samples = body_samples(20_000, chest_circumference=(920.0, 8.0), waist_circumference=(720.0, 8.0))
    advice = advise_size(shipped_charts()["eu_womens_tops"], samples)
    assert advice.between_sizes == ("38", "40")
    assert {pull.measurement: pull.size for pull in advice.pulls} == {
        "chest_circumference": "40",
        "waist_circumference": "38",
    }
    assert "between sizes 38 and 40" in advice.explanation
    assert "chest circumference points to 40" in advice.explanation
    assert "waist circumference points to 38" in advice.explanation


def test_a_body_on_the_boundary_of_one_measurement_falls_between_the_neighbouring_sizes():
    samples = body_samples(20_000, chest_circumference=(1020.0, 30.0))
    advice = advise_size(shipped_charts()["en13402_mens_tops"], samples)
    assert advice.between_sizes == ("M", "L")
    assert "between sizes M and L" in advice.explanation
    assert "points to" not in advice.explanation


def test_a_body_inside_one_size_is_between_no_sizes():
    samples = body_samples(20_000, chest_circumference=(880.0, 5.0), waist_circumference=(720.0, 5.0))
    advice = advise_size(shipped_charts()["eu_womens_tops"], samples)
    assert advice.recommended_size == "38"
    assert advice.between_sizes == ()
    assert {pull.size for pull in advice.pulls} == {"38"}
    assert "between" not in advice.explanation


def test_the_fit_profile_holds_every_shipped_chart_with_advise_sizes_probabilities():
    samples = body_samples(5_000, chest_circumference=(920.0, 15.0), waist_circumference=(720.0, 15.0))
    profile = fit_profile(samples)
    assert set(profile) == set(shipped_charts())
    for chart_id, (labels, probabilities, recommended) in profile.items():
        advice = advise_size(shipped_charts()[chart_id], samples)
        assert labels == tuple(fit.label for fit in advice.fits)
        assert probabilities == tuple(fit.probability for fit in advice.fits)
        assert recommended == advice.recommended_size
    # Between 38 and 40, no size of the women's tops chart may fit: the closest is recommended.
    assert max(profile["eu_womens_tops"][1]) < 0.2 and profile["eu_womens_tops"][2] in ("38", "40")
