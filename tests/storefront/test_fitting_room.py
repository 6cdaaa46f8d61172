"""The fitting room in a real browser: Debian's Chromium, driven by playwright-core, against the real suite.

``fitting_room.mjs`` takes a shopper through the page (the body form and the first feedback
by keyboard alone, then try-on, cart, dislike, an outfit, another size, the back view, the
3D body turned by a button and by dragging, in WebGL and in a page without it, buying what is tried on,
axe-core at a desktop's and a phone's width, delete my data) and prints what the shopper saw; this test asserts on it. The screenshots
are kept under the test's temporary folder.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
SCRIPT = Path(__file__).with_name("fitting_room.mjs")
REPOSITORY = Path(__file__).resolve().parents[2]
FEED_CHANGE_MS = 1000


@pytest.fixture(scope="module")
def visit(shop, tmp_path_factory) -> dict:
    if not CHROMIUM.exists() or shutil.which("node") is None:
        pytest.fail("the browser tests need /usr/bin/chromium and node (make setup installs them)")
    if not (REPOSITORY / "node_modules" / "playwright-core").exists():
        pytest.fail("the browser tests need playwright-core and axe-core from npm (make setup runs npm ci)")
    out = tmp_path_factory.mktemp("fitting-room")
    run = subprocess.run(
        ["node", str(SCRIPT), shop.url, str(out)], capture_output=True, text=True, timeout=180, cwd=REPOSITORY
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    # Kept beside the screenshots, for reading a failure's whole visit.
    (out / "visit.json").write_text(json.dumps(seen, indent=1))
    seen["screenshot"] = out / "fitting-room.png"
    seen["tryon_screenshot"] = out / "fitting-room-tryon.png"
    assert "error" not in seen, f"the visit stopped after {seen['steps']}: {seen['error']}"
    return seen


def test_the_body_from_the_form_shows_every_measurement_with_a_90_percent_interval(visit):
    rows = {name: (value, interval, source) for name, value, interval, source in visit["measurements"]}
    assert rows["stature"] == ("168.0 cm", "", "given")
    assert rows["waist circumference"][2] == "given"
    inferred = [row for row in rows.values() if row[2] == "inferred"]
    assert len(inferred) >= 10
    assert all(re.fullmatch(r"[\d.]+ (cm|kg) – [\d.]+ (cm|kg)", interval) for _, interval, _ in inferred)


def test_the_feed_shows_the_advised_size_and_its_fit_probability(visit):
    advised = [text for text in visit["advice"] if text.startswith("Size ")]
    assert advised, visit["advice"]
    assert all(re.fullmatch(r"Size \S+: \d{1,3}% fit", text) for text in advised)


def test_each_interaction_changes_the_feed_within_a_second_without_a_reload(visit):
    for key in ("likeFeedChangeMs", "cartFeedChangeMs", "dislikeFeedChangeMs"):
        assert visit[key] is not None, f"{key}: the feed did not change"
        assert visit[key] < FEED_CHANGE_MS, f"{key}: {visit[key]} ms"
    assert visit["tryOnFeedChangeMs"] is not None
    assert visit["likedGarmentLeftFeed"]


def test_keyboard_alone_fills_the_form_and_likes_a_garment(visit):
    assert visit["steps"][:3] == ["cold feed", "body by keyboard", "like by keyboard"]
    assert visit["tabsToHeight"] == 1
    assert visit["focusAfterLike"], "the focus left the feed when it was redrawn"


def test_the_try_on_picture_of_a_look_dresses_the_torso_and_leaves_the_head(visit):
    assert visit["tryOnAlt"].startswith("You wearing ")
    assert visit["lookAlt"].count(",") >= 1, "a whole outfit is tried on"
    assert visit["lookChange"]["torso"] > 0.2
    assert visit["lookChange"]["head"] < 0.05
    assert all(pieces >= 2 for pieces in visit["outfits"]) and visit["outfits"]


def test_the_sizes_come_from_the_chart_with_the_advised_one_chosen(visit):
    assert visit["sizeOptions"] and all(len(options) >= 3 for options in visit["sizeOptions"]), visit["sizeOptions"]
    assert visit["advisedSelected"].endswith(" (advised)")
    assert all(sum(o.endswith(" (advised)") for o in options) == 1 for options in visit["sizeOptions"])


def test_another_size_changes_the_picture_and_the_fit_table(visit):
    change = visit["sizeChange"]
    assert change["from"] != change["to"]
    assert change["pictureChange"] > 0.005, change
    assert change["fitBefore"] != change["fitAfter"]
    verdicts = {row[2] for row in change["fitAfter"] if len(row) == 4}
    assert verdicts & {"Tight", "Loose", "Short", "Long"}, change["fitAfter"]
    assert all(re.fullmatch(r"[+−]\d+\.\d cm", row[3]) for row in change["fitAfter"] if len(row) == 4)


def test_the_back_view_differs_from_the_front(visit):
    assert "view=back" in visit["backView"]["src"]
    assert visit["backView"]["alt"].endswith("seen from the back")
    assert visit["backView"]["change"] > 0.01, visit["backView"]


def test_the_3d_body_is_drawn_and_turning_it_changes_what_shows(visit):
    model = visit["model"]
    assert 0.05 < model["painted"] < 0.9, model
    assert model["turnChange"] > 0.02, model
    assert model["dragChange"] > 0.02, model
    assert model["label"].startswith("Your body in 3D wearing ")
    assert visit["tryon_screenshot"].stat().st_size > 5_000


def test_without_webgl_the_2d_painter_draws_and_turns_the_body(visit):
    assert visit["model"]["viewer"] == "webgl", "Chromium gives WebGL here: the first viewer must use it"
    painter = visit["painterModel"]
    assert painter["viewer"] == "2d"
    assert 0.05 < painter["painted"] < 0.9, painter
    assert painter["turnChange"] > 0.02, painter


def test_buying_what_is_tried_on_sends_one_order_with_each_size_and_the_body(visit):
    order = visit["order"]
    assert order["status"] == 202
    interactions = order["interactions"]
    assert interactions and all(item["type"] == "purchase" for item in interactions)
    assert len({item["session_id"] for item in interactions}) == 1
    assert all(item["body_id"] == order["bodyId"] for item in interactions)
    assert order["chosenSize"] in [item.get("size") for item in interactions], "the size chosen is the size bought"
    assert visit["orderStatus"].startswith("Bought:") and f"in {order['chosenSize']}" in visit["orderStatus"]


def test_the_page_fits_a_phone_and_logs_no_console_error(visit):
    assert visit["phoneOverflow"] <= 0
    assert visit["consoleErrors"] == []


def test_axe_finds_no_serious_or_critical_violation(visit):
    serious = [v for v in visit["axeViolations"] if v["impact"] in ("serious", "critical")]
    assert serious == []


def test_delete_my_data_removes_the_body_and_starts_afresh(visit):
    assert visit["deleteStatus"] == "Your body and your history were deleted."
    assert visit["bodyViewHidden"]
    assert visit["deletedBodyStatus"] == 404
    assert visit["feedNoteAfterDelete"].startswith("Popular")
    assert visit["failedRequests"] == []
    assert visit["screenshot"].stat().st_size > 10_000
