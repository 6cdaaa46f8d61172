"""The storefront's API against the real suite: broker, three services as processes, storefront, all on loopback.

Each test is a storefront's use of the API: a body from a few numbers, size advice, the feed
with advice on every sized garment, interactions that change the feed through Kafka, try-on
pictures, outfits, similar garments, and delete-my-data removing the body and the history.
"""

from __future__ import annotations

import io
import time
import uuid

import httpx
import numpy as np
import pytest
from PIL import Image

from tryon.services.storefront.up import start_storefront
from tryon.shared.glb import read_glb

pytestmark = pytest.mark.integration

FEED_DEADLINE_S = 10.0


@pytest.fixture(scope="module")
def api(shop):
    with httpx.Client(base_url=shop.url, timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def body(api) -> dict:
    response = api.post("/v1/bodies", json={"measurements": {"stature": 1680, "weight": 64}, "sex": "female"})
    assert response.status_code == 201, response.text
    return response.json()


def feed(api, user_id: str, body_id: str | None = None, **params) -> dict:
    response = api.get(f"/v1/shoppers/{user_id}/recommendations",
                       params={"k": 12, **({"body_id": body_id} if body_id else {}), **params})
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_history(api, user_id: str, size: int) -> dict:
    deadline = time.monotonic() + FEED_DEADLINE_S
    answer = feed(api, user_id)
    while answer["history_size"] < size:
        assert time.monotonic() < deadline, f"{user_id}'s interactions did not reach the recommender"
        time.sleep(0.05)
        answer = feed(api, user_id)
    return answer


def test_a_body_from_two_numbers_has_every_measurement_with_a_90_percent_interval(api, body):
    measurements = {m["name"]: m for m in body["measurements"]}
    assert measurements["stature"]["observed"] and measurements["stature"]["value"] == pytest.approx(1680)
    inferred = [m for m in measurements.values() if not m["observed"]]
    assert len(inferred) >= 10
    assert all(m["lower_90"] < m["value"] < m["upper_90"] for m in inferred)
    again = api.get(f"/v1/bodies/{body['body_id']}")
    assert again.json()["measurements"] == body["measurements"]
    silhouette = api.get(body["silhouette_url"])
    assert silhouette.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(silhouette.content)).size == (256, 512)


def test_a_body_without_weight_is_refused_with_the_services_message(api):
    response = api.post("/v1/bodies", json={"measurements": {"stature": 1680}})
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_ARGUMENT"
    assert "weight" in response.json()["message"]


def test_an_unknown_body_is_404_and_a_malformed_id_400(api):
    response = api.get(f"/v1/bodies/{uuid.uuid4()}", headers={"x-request-id": "find-nobody"})
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"
    assert response.json()["request_id"] == "find-nobody"
    assert api.get("/v1/bodies/not-an-id").status_code == 400


def test_size_advice_from_a_garment_and_from_a_shipped_chart(api, body):
    garments = api.get("/v1/garments", params={"category": "trouser", "page_size": 10}).json()["garments"]
    assert garments and all(g["category"] == "trouser" for g in garments)
    sized = next(g for g in garments if g["has_size_chart"])
    advice = api.get(f"/v1/bodies/{body['body_id']}/size-advice", params={"garment_id": sized["garment_id"]}).json()
    labels = [fit["label"] for fit in advice["fits"]]
    assert advice["recommended_size"] in labels
    assert sum(fit["probability"] for fit in advice["fits"]) <= 1.0 + 1e-6
    by_chart = api.get(f"/v1/bodies/{body['body_id']}/size-advice", params={"chart_id": "eu_womens_tops"})
    assert by_chart.status_code == 200 and by_chart.json()["explanation"]
    unknown = api.get(f"/v1/bodies/{body['body_id']}/size-advice", params={"chart_id": "no_such_chart"})
    assert unknown.status_code == 404


def test_the_feed_shows_catalogue_garments_with_advice_where_they_have_a_chart(api, body, shop):
    answer = feed(api, f"new-{uuid.uuid4().hex}", body["body_id"])
    assert answer["cold_start"] and answer["history_size"] == 0
    assert len(answer["items"]) == 12
    assert {item["garment"]["garment_id"] for item in answer["items"]} <= set(shop.garment_ids)
    for item in answer["items"]:
        assert (item["size_advice"] is not None) == item["garment"]["has_size_chart"]
    image = api.get(answer["items"][0]["garment"]["image_url"])
    assert image.headers["content-type"] == "image/png"


def test_interactions_change_the_feed(api, shop):
    user_id = f"shopper-{uuid.uuid4().hex}"
    before = feed(api, user_id)
    liked = [item["garment"]["garment_id"] for item in before["items"][:3]]
    response = api.post(f"/v1/shoppers/{user_id}/interactions",
                        json={"interactions": [{"garment_id": g, "type": "like"} for g in liked]})
    assert response.status_code == 202 and len(response.json()["event_ids"]) == 3
    after = wait_for_history(api, user_id, 3)
    assert not after["cold_start"]
    shown_after = [item["garment"]["garment_id"] for item in after["items"]]
    assert not set(liked) & set(shown_after), "garments already acted on stay out of the feed"
    assert shown_after != [item["garment"]["garment_id"] for item in before["items"]]


def test_an_order_system_records_a_sized_purchase_and_its_return_with_the_body(api, body):
    trousers = api.get("/v1/garments", params={"category": "trouser", "page_size": 10}).json()["garments"]
    sized = next(g for g in trousers if g["has_size_chart"])
    advice = api.get(f"/v1/bodies/{body['body_id']}/size-advice", params={"garment_id": sized["garment_id"]}).json()
    user_id = f"shopper-{uuid.uuid4().hex}"
    order = {"garment_id": sized["garment_id"], "size": advice["recommended_size"], "body_id": body["body_id"]}
    response = api.post(f"/v1/shoppers/{user_id}/interactions", json={"interactions": [
        {**order, "type": "purchase", "session_id": "order-1"},
        {**order, "type": "return", "return_reason": "too_small"},
    ]})
    assert response.status_code == 202, response.text
    assert len(response.json()["event_ids"]) == 2
    wait_for_history(api, user_id, 2)
    wrong = api.post(f"/v1/shoppers/{user_id}/interactions", json={"interactions": [
        {**order, "type": "purchase", "size": "no-such-size"},
    ]})
    assert wrong.status_code == 400 and wrong.json()["code"] == "INVALID_ARGUMENT"
    assert advice["recommended_size"] in wrong.json()["message"], "the refusal names the chart's sizes"


def test_try_on_dresses_the_body_in_the_garments(api, body):
    tops = api.get("/v1/garments", params={"category": "t_shirt_top", "page_size": 1}).json()["garments"]
    silhouette = np.asarray(Image.open(io.BytesIO(api.get(body["silhouette_url"]).content)).convert("RGB"), dtype=int)
    response = api.get(f"/v1/bodies/{body['body_id']}/try-on.png", params={"garment_id": tops[0]["garment_id"]})
    assert response.status_code == 200, response.text
    dressed = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), dtype=int)
    assert dressed.shape == silhouette.shape
    torso = (slice(130, 260), slice(80, 176))
    changed = np.abs(dressed[torso] - silhouette[torso]).sum(axis=-1) > 30
    assert changed.mean() > 0.1, "the top does not show on the torso"
    missing = api.get(f"/v1/bodies/{body['body_id']}/try-on.png", params={"garment_id": "no-such-garment"})
    assert missing.status_code == 404


def test_a_smaller_and_a_larger_size_draw_differently_and_say_tight_and_loose(api, body):
    tops = api.get("/v1/garments", params={"category": "t_shirt_top", "page_size": 10}).json()["garments"]
    top = next(g for g in tops if g["has_size_chart"])
    labels = [fit["label"] for fit in api.get(f"/v1/bodies/{body['body_id']}/size-advice",
                                               params={"garment_id": top["garment_id"]}).json()["fits"]]
    base = f"/v1/bodies/{body['body_id']}"
    small, large = (("garment", f"{top['garment_id']}:{label}") for label in (labels[0], labels[-1]))
    pictures = {}
    for name, garment, view in (("small", small, "front"), ("large", large, "front"), ("back", large, "back")):
        response = api.get(f"{base}/try-on.png", params=[garment, ("view", view)])
        assert response.status_code == 200, response.text
        pictures[name] = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), dtype=int)
    differs = lambda a, b: (np.abs(pictures[a] - pictures[b]).sum(axis=-1) > 30).mean()  # noqa: E731
    assert differs("small", "large") > 0.005 and differs("large", "back") > 0.01
    verdicts = {}
    for label, garment in ((labels[0], small), (labels[-1], large)):
        fit = api.get(f"{base}/try-on", params=[garment]).json()["fits"][0]
        assert fit["size_label"] == label and fit["size_choice"] == "requested"
        verdicts[label] = {m["measurement"]: m["verdict"] for m in fit["measurements"]}
    assert verdicts[labels[0]]["chest_circumference"] == "tight"
    assert verdicts[labels[-1]]["chest_circumference"] == "loose"
    unknown = api.get(f"{base}/try-on", params={"garment": f"{top['garment_id']}:XXXXL"})
    assert unknown.status_code == 400 and labels[0] in unknown.json()["message"]


def test_the_bare_and_the_dressed_body_come_as_glb_and_the_product_picture_in_colour(api, body):
    base = f"/v1/bodies/{body['body_id']}"
    facts = api.get(f"{base}/mesh").json()
    bare = read_glb(api.get(facts["glb_url"]).content)
    assert len(bare[0].vertices) == facts["vertex_count"] and len(bare[0].faces) == facts["triangle_count"]
    assert {"neck", "waist", "hips"} <= {k["name"] for k in facts["keypoints"]}
    assert abs(facts["mesh_measurements"]["stature"] - 1680) < 30
    top = api.get("/v1/garments", params={"category": "t_shirt_top", "page_size": 1}).json()["garments"][0]
    dressed = api.get(f"{base}/try-on.glb", params={"garment": f"{top['garment_id']}:", "texture_size": 256})
    assert dressed.status_code == 200 and dressed.headers["content-type"] == "model/gltf-binary"
    assert any(mesh.texture_png for mesh in read_glb(dressed.content))
    picture = api.get(top["picture_url"], params={"max_side": 64})
    assert picture.status_code == 200 and picture.headers["x-original-picture"] == "true"
    image = Image.open(io.BytesIO(picture.content))
    assert max(image.size) <= 64 and image.mode in ("RGB", "RGBA")


def test_outfits_and_similar_garments_come_with_catalogue_entries(api, body, shop):
    outfits = api.get(f"/v1/shoppers/someone-{uuid.uuid4().hex}/outfits",
                      params={"k": 2, "body_id": body["body_id"]}).json()
    assert len(outfits["outfits"]) == 2
    for outfit in outfits["outfits"]:
        categories = {item["garment"]["category"] for item in outfit["items"]}
        assert categories & {"sandal", "sneaker", "ankle_boot"}, "every outfit has shoes"
    similar = api.get(f"/v1/garments/{shop.garment_ids[0]}/similar", params={"k": 5}).json()
    assert len(similar["items"]) == 5
    assert shop.garment_ids[0] not in {item["garment"]["garment_id"] for item in similar["items"]}


def test_delete_my_data_removes_the_body_and_the_history(api):
    user_id = f"leaver-{uuid.uuid4().hex}"
    body = api.post("/v1/bodies", json={"measurements": {"stature": 1800, "weight": 80}}).json()
    garment_id = feed(api, user_id)["items"][0]["garment"]["garment_id"]
    api.post(f"/v1/shoppers/{user_id}/interactions", json={"interactions": [{"garment_id": garment_id, "type": "view"}]})
    wait_for_history(api, user_id, 1)
    response = api.delete(f"/v1/shoppers/{user_id}", params={"body_id": body["body_id"]})
    assert response.status_code == 200
    assert response.json()["body_id"] == body["body_id"]
    assert api.get(f"/v1/bodies/{body['body_id']}").status_code == 404
    deadline = time.monotonic() + FEED_DEADLINE_S
    while feed(api, user_id)["history_size"] != 0:
        assert time.monotonic() < deadline, "the shopper's history outlived delete-my-data"
        time.sleep(0.05)
    assert feed(api, user_id)["cold_start"]


def test_metrics_and_readiness_of_the_running_storefront(api):
    assert api.get("/readyz").json() == {
        "status": "ok", "services": {"body": True, "garment": True, "recommendation": True}
    }
    assert "tryon_http_requests_total" in api.get("/metrics").text


def test_sigterm_stops_a_storefront_cleanly_within_the_grace(shop):
    storefront, url = start_storefront(shop.suite)
    with httpx.Client(base_url=url, timeout=10.0) as client:
        assert client.get("/healthz").status_code == 200
    started = time.monotonic()
    assert storefront.stop(grace_s=10.0) == 0
    assert time.monotonic() - started < 10.0
