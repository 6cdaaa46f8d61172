"""The contract rules of ``tryon.shared.contract``: categories, sex, ids, names, latents and charts."""

from __future__ import annotations

import json
import re
from importlib import resources

import numpy as np
import pytest

from tryon.services.body.cvae import CVAEConfig
from tryon.services.garment.vae import VAEConfig
from tryon.shared import contract
from tryon.shared.errors import InvalidArgument, InvalidEvent
from tryon.shared.proto import common_pb2


def test_category_labels_are_proto_values_minus_one() -> None:
    assert len(contract.CATEGORY_NAMES) == 10
    for label, name in enumerate(contract.CATEGORY_NAMES):
        proto_value = common_pb2.GarmentCategory.Value(f"GARMENT_CATEGORY_{name.upper()}")
        assert contract.category_to_proto(label) == proto_value
        assert contract.category_from_proto(proto_value) == label
        assert contract.CATEGORY_PROTO_VALUES[label] == proto_value
    assert contract.category_from_proto(np.int64(4)) == 3


@pytest.mark.parametrize("value", [0, 11, -1, 2.0, True, "3"])
def test_category_from_proto_refuses_unspecified_and_unknown(value) -> None:
    with pytest.raises(InvalidArgument, match="GARMENT_CATEGORY_ANKLE_BOOT"):
        contract.category_from_proto(value)


def test_an_event_breaking_a_rule_is_an_invalid_event() -> None:
    with pytest.raises(InvalidEvent, match="category must be one of"):
        contract.category_from_proto(0, error=InvalidEvent)
    with pytest.raises(InvalidEvent, match="body_id is required"):
        contract.check_id("", "body_id", InvalidEvent)


def test_sex_mapping_both_ways() -> None:
    assert contract.sex_from_proto(common_pb2.SEX_FEMALE) == "female"
    assert contract.sex_from_proto(common_pb2.SEX_MALE) == "male"
    assert contract.sex_from_proto(common_pb2.SEX_UNSPECIFIED) is None
    for value, sex in contract.SEX_FROM_PROTO.items():
        assert contract.SEX_TO_PROTO[sex] == value
    with pytest.raises(InvalidArgument, match="SEX_MALE"):
        contract.sex_from_proto(3)


@pytest.mark.parametrize(
    "value, words",
    [
        ("", "is required"),
        ("u" * 257, "at most 256 characters; got 257"),
        ("user\n42", "character 4 is U+000A"),
        ("user\x00", "U+0000"),
        ("ab\u202ecd", "U+202E"),
        ("zero\u200bwidth", "U+200B"),
        ("line\u2028break", "U+2028"),
    ],
)
def test_ids_are_refused_with_the_reason(value: str, words: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(words)):
        contract.check_id(value, "user_id")


@pytest.mark.parametrize("value", ["u", "u" * 256, "shopper-42@example.org", "Zoë Ösel", "id with\u00a0space"])
def test_ids_within_the_rules_pass(value: str) -> None:
    assert contract.check_id(value, "user_id") == value


def test_latents_are_checked_for_length_finiteness_and_norm() -> None:
    good = np.full(16, 0.5)
    np.testing.assert_array_equal(contract.check_latent(good, "body_latent", 16), good.astype(np.float32))
    assert contract.check_latent([0.0] * 4, "content_latent", 4).dtype == np.float32
    with pytest.raises(InvalidArgument, match="must hold 16 numbers; got 15"):
        contract.check_latent(good[:15], "body_latent", 16)
    with pytest.raises(InvalidArgument, match="finite"):
        contract.check_latent([*good[:15], np.nan], "body_latent", 16)
    with pytest.raises(InvalidArgument, match="finite"):
        contract.check_latent([*good[:15], np.inf], "body_latent", 16)
    at_bound = np.zeros(16)
    at_bound[0] = contract.MAX_LATENT_NORM
    contract.check_latent(at_bound, "body_latent", 16)
    with pytest.raises(InvalidArgument, match=f"L2 norm of at most {contract.MAX_LATENT_NORM:g}; got 1e\\+06"):
        contract.check_latent(np.full(16, 2.5e5), "body_latent", 16)


def test_latent_lengths_are_the_shipped_models_latent_sizes() -> None:
    assert contract.CONTENT_LATENT_DIM == VAEConfig().latent_dim
    assert contract.BODY_LATENT_DIM == CVAEConfig().latent_dim


def test_shipped_chart_ids_are_the_charts_body_service_ships() -> None:
    text = resources.files("tryon.services.body").joinpath("size_charts.json").read_text(encoding="utf-8")
    assert contract.SHIPPED_CHART_IDS == tuple(chart["chart_id"] for chart in json.loads(text)["charts"])
    assert contract.SHIPPED_CHART_SIZES == {
        chart["chart_id"]: tuple(size["label"] for size in chart["sizes"]) for chart in json.loads(text)["charts"]
    }
    assert contract.check_size("38", "eu_womens_tops") == "38" and contract.check_size("", "") == ""
    with pytest.raises(InvalidArgument, match="'37' is not a size of chart eu_womens_tops; its sizes: 32, 34"):
        contract.check_size("37", "eu_womens_tops")
    with pytest.raises(InvalidArgument, match="without a shipped size chart; leave it empty"):
        contract.check_size("M", "")
    assert contract.check_chart_id("eu_mens_tops") == "eu_mens_tops"
    with pytest.raises(InvalidArgument, match="'eu_nowhere' is not a shipped chart; known charts: en13402_womens_tops"):
        contract.check_chart_id("eu_nowhere")
