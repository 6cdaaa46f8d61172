"""The garment-fit model: a size's garment measurements, ease and verdicts against shipped charts."""

from __future__ import annotations

import pytest

from tryon.services.garment.categories import label_from_name
from tryon.services.garment.garment_fit import (
    CHEST,
    EASE_MM,
    HIP,
    INSEAM,
    WAIST,
    chart_sizes,
    find_size,
    fit_size,
    own_size,
    size_labels,
)
from tryon.services.garment.domain import check_size_chart
from tryon.shared.errors import InvalidArgument

TEE, TROUSER = label_from_name("t_shirt_top"), label_from_name("trouser")
WOMENS_TOPS = chart_sizes({"chart_id": "en13402_womens_tops", "sizes": []})
WOMENS_TROUSERS = chart_sizes({"chart_id": "eu_womens_trousers", "sizes": []})
MENS_TROUSERS = chart_sizes({"chart_id": "us_mens_trousers", "sizes": []})


def verdicts(category: int, sizes, label: str, body: dict[str, float]) -> dict[str, str]:
    return {m.measurement: m.fit for m in fit_size(category, find_size(sizes, label, "g"), body).measurements}


def test_garment_girth_is_the_range_midpoint_plus_the_category_ease() -> None:
    fit = fit_size(TEE, find_size(WOMENS_TOPS, "M", "g"), {CHEST: 930.0, WAIST: 780.0, HIP: 1000.0})
    (chest,) = fit.measurements
    assert chest.garment_mm == pytest.approx((900 + 980) / 2 + EASE_MM["t_shirt_top"][CHEST])
    assert chest.ease_mm == pytest.approx(chest.garment_mm - 930.0)
    assert fit.girth_ratios[CHEST] == pytest.approx(chest.garment_mm / 930.0)


def test_a_size_fits_inside_its_range_and_is_tight_below_and_loose_above() -> None:
    body = {CHEST: 930.0}
    assert verdicts(TEE, WOMENS_TOPS, "M", body) == {CHEST: "fitting"}
    assert verdicts(TEE, WOMENS_TOPS, "S", body) == {CHEST: "tight"}
    assert verdicts(TEE, WOMENS_TOPS, "L", body) == {CHEST: "loose"}
    # At the range's edges the size still fits.
    assert verdicts(TEE, WOMENS_TOPS, "M", {CHEST: 900.0}) == {CHEST: "fitting"}
    assert verdicts(TEE, WOMENS_TOPS, "M", {CHEST: 980.0}) == {CHEST: "fitting"}
    assert verdicts(TEE, WOMENS_TOPS, "M", {CHEST: 981.0}) == {CHEST: "tight"}


def test_each_measurement_of_a_chart_is_judged_on_its_own() -> None:
    body = {WAIST: 700.0, HIP: 1030.0, INSEAM: 800.0}
    assert verdicts(TROUSER, WOMENS_TROUSERS, "38", body) == {WAIST: "fitting", HIP: "tight"}
    assert verdicts(TROUSER, MENS_TROUSERS, "28/30", body) == {WAIST: "fitting", INSEAM: "fitting"}
    assert verdicts(TROUSER, MENS_TROUSERS, "28/32", body)[INSEAM] == "long"
    assert verdicts(TROUSER, MENS_TROUSERS, "28/34", {WAIST: 700.0, INSEAM: 820.0})[INSEAM] == "long"
    short = fit_size(TROUSER, find_size(MENS_TROUSERS, "30/30", "g"), {WAIST: 760.0, INSEAM: 900.0})
    assert {m.measurement: m.fit for m in short.measurements}[INSEAM] == "short"
    assert short.length_ratio == pytest.approx((776.6 + 827.4) / 2 / 900.0)


def test_girths_a_chart_lacks_are_graded_with_the_ones_it_gives() -> None:
    body = {CHEST: 930.0, WAIST: 780.0, HIP: 1000.0}
    small, large = (fit_size(TEE, find_size(WOMENS_TOPS, label, "g"), body) for label in ("XS", "XL"))
    for girth in (WAIST, HIP):
        assert small.girth_ratios[girth] < 1.0 < large.girth_ratios[girth]
    assert small.tightness > 0 and small.looseness == 0
    assert large.looseness > 0 and large.tightness == 0


def test_ratios_grow_with_the_size() -> None:
    body = {CHEST: 930.0, WAIST: 780.0, HIP: 1000.0}
    ratios = [fit_size(TEE, size, body).girth_ratios[CHEST] for size in WOMENS_TOPS]
    assert ratios == sorted(ratios) and len(set(ratios)) == len(ratios)


def test_the_body_size_is_the_one_whose_ranges_hold_the_body() -> None:
    assert own_size(WOMENS_TOPS, {CHEST: 930.0}) == "M"
    assert own_size(WOMENS_TOPS, {CHEST: 2000.0}) == "3XL"
    assert own_size(WOMENS_TROUSERS, {WAIST: 750.0, HIP: 1000.0}) == "40"
    assert own_size(MENS_TROUSERS, {WAIST: 800.0, INSEAM: 850.0}) == "32/32"


def test_an_unknown_label_names_the_garment_and_its_sizes() -> None:
    with pytest.raises(InvalidArgument) as caught:
        find_size(WOMENS_TOPS, "XM", "tee-7")
    assert "tee-7" in str(caught.value) and ", ".join(size_labels(WOMENS_TOPS)) in str(caught.value)


def test_inline_charts_are_used_as_given_and_unknown_ids_have_no_sizes() -> None:
    inline = {"chart_id": "", "sizes": [{"label": "One", "ranges": [{"measurement": CHEST, "min": 800, "max": 1200}]}]}
    assert size_labels(chart_sizes(inline)) == ["One"]
    assert chart_sizes(None) == [] and chart_sizes({"chart_id": "nope", "sizes": []}) == []


def test_a_stated_garment_measurement_is_used_as_it_is() -> None:
    size = {
        "label": "M",
        "ranges": [{"measurement": CHEST, "min": 900.0, "max": 980.0}],
        "garment_measurements": [{"name": CHEST, "value": 1100.0}, {"name": HIP, "value": 1000.0}],
    }
    fit = fit_size(TEE, size, {CHEST: 960.0, WAIST: 800.0, HIP: 1010.0})
    by_name = {m.measurement: m for m in fit.measurements}
    assert by_name[CHEST].garment_mm == 1100.0 and by_name[CHEST].ease_mm == pytest.approx(140.0)
    # The body lies in the size's chest range, so however roomy the garment, the size fits.
    assert by_name[CHEST].fit == "fitting"
    assert fit.girth_ratios[CHEST] == pytest.approx(1100.0 / 960.0)
    # Without a body range, a hip of 1000 mm is made for a body of about 1000 - 51 mm: this one is larger.
    assert by_name[HIP].fit == "tight" and fit.girth_ratios[HIP] == pytest.approx(1000.0 / 1010.0)


def test_registration_keeps_garment_measurements_and_refuses_impossible_ones() -> None:
    chart = {
        "sizes": [
            {"label": "M", "ranges": [{"measurement": CHEST, "min": 900, "max": 980}], "garment_measurements": [{"name": CHEST, "value": 1040}]},
            {"label": "L", "ranges": [{"measurement": CHEST, "min": 980, "max": 1060}]},
        ]
    }
    checked = check_size_chart(chart)
    assert checked["sizes"][0]["garment_measurements"] == [{"name": CHEST, "value": 1040.0}]
    assert "garment_measurements" not in checked["sizes"][1]
    chart["sizes"][0]["garment_measurements"][0]["value"] = -3
    with pytest.raises(InvalidArgument) as caught:
        check_size_chart(chart)
    assert "size_chart.sizes[0].garment_measurements[0].value" in str(caught.value)
