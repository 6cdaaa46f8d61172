// The fitting room: a shopper's body from a few numbers, a live feed, try-on at chosen sizes with the
// fit of each and the dressed body in 3D, outfits, delete my data.
import * as api from "./api.js";
import { createViewer, parseGlb } from "./viewer.js";

const SHOPPER_KEY = "tryon-shopper-id";
const BODY_KEY = "tryon-body-id";
const FEED_SIZE = 12;
const MAX_TRY_ON = 8;
// How long to wait for the recommender to take in an interaction before showing the feed as it is.
const FRESH_FEED_DEADLINE_MS = 3000;
const FRESH_FEED_POLL_MS = 80;
const TURN_STEP = Math.PI / 6;
const DRAG_RADIANS_PER_PIXEL = 0.012;

const $ = (selector) => document.querySelector(selector);

const state = {
  userId: null,
  bodyId: null,
  historySize: 0,
  // What is tried on, in the order put on: { garment, size, sizes, advised }; size "" is the body's own.
  tryingOn: [],
  view: "front",
  model: { viewer: null, meshes: null, yaw: 0, frame: 0 },
  drawn: 0, // increases with each try-on drawn; answers of an older one are dropped
};

function randomId(prefix) {
  // getRandomValues works on plain-HTTP origins too, where crypto.randomUUID is missing.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function say(text) {
  $("#status").textContent = text;
}

function element(tag, { dataset = {}, ...properties } = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, properties);
  Object.assign(node.dataset, dataset);
  node.append(...children);
  return node;
}

const words = (name) => name.replaceAll("_", " ");

function measurementText(unit, value) {
  return unit === "mm" ? `${(value / 10).toFixed(1)} cm` : `${value.toFixed(1)} ${unit}`;
}

function priceText(price) {
  if (!price) return "";
  return new Intl.NumberFormat(undefined, { style: "currency", currency: price.currency_code })
    .format(price.amount_minor / 100);
}

function showError(error) {
  say(error instanceof api.ApiError ? `Sorry: ${error.message}` : "Sorry, the shop cannot be reached.");
}

// --- body -----------------------------------------------------------------------------------

function showBody(body) {
  const rows = body.measurements.map((m) =>
    element(
      "tr",
      {},
      element("th", { scope: "row", textContent: words(m.name) }),
      element("td", { textContent: measurementText(m.unit, m.value) }),
      element("td", {
        textContent: m.observed ? "" : `${measurementText(m.unit, m.lower_90)} – ${measurementText(m.unit, m.upper_90)}`,
      }),
      element("td", { textContent: m.observed ? "given" : "inferred" }),
    ),
  );
  $("#measurements tbody").replaceChildren(...rows);
  $("#silhouette").src = `${body.silhouette_url}?width=128&height=256`;
  $("#body-view").hidden = false;
}

async function submitBody(event) {
  event.preventDefault();
  const form = event.target;
  const number = (name) => (form.elements[name].value === "" ? null : Number(form.elements[name].value));
  $("#body-error").textContent = "";
  if (number("height") === null || number("weight") === null) {
    $("#body-error").textContent = "Please give your height and weight.";
    (number("height") === null ? form.elements.height : form.elements.weight).focus();
    return;
  }
  const measurements = { stature: number("height") * 10, weight: number("weight") };
  for (const [field, name] of [["chest", "chest_circumference"], ["waist", "waist_circumference"], ["hips", "hip_circumference"]]) {
    if (number(field) !== null) measurements[name] = number(field) * 10;
  }
  say("Working out your body…");
  try {
    const body = await api.createBody(measurements, form.elements.sex.value);
    state.bodyId = body.body_id;
    localStorage.setItem(BODY_KEY, body.body_id);
    showBody(body);
    say("Here is your body. Sizes in your feed are advised for it.");
    await Promise.all([refreshFeed(), refreshOutfits(), showTryOn()]);
  } catch (error) {
    if (error instanceof api.ApiError && error.status === 400) {
      $("#body-error").textContent = error.message;
      say("");
    } else {
      showError(error);
    }
  }
}

// --- feed -----------------------------------------------------------------------------------

function adviceText(advice) {
  if (!advice) return "No size chart";
  return `Size ${advice.recommended_size}: ${Math.round(advice.probability * 100)}% fit`;
}

function garmentCard(item) {
  const garment = item.garment;
  const act = (label, type, extra) =>
    element("button", {
      type: "button",
      textContent: label,
      onclick: () => interact(garment, type, extra),
      ariaLabel: `${label}: ${garment.name}`,
    });
  return element(
    "li",
    { className: "card", dataset: { garmentId: garment.garment_id } },
    element("img", { src: api.pictureUrl(garment, 168), alt: garment.name, width: 84, height: 84 }),
    element("h3", { textContent: garment.name }),
    element("p", { className: "price", textContent: priceText(garment.price) }),
    element("p", { className: item.size_advice ? "advice" : "advice none", textContent: adviceText(item.size_advice) }),
    element(
      "div",
      { className: "actions" },
      act("View", "view"),
      act("Try on", "try_on", () => putOn(garment)),
      act("Add to cart", "add_to_cart"),
      act("Like", "like"),
      act("Dislike", "dislike"),
    ),
  );
}

function renderFeed(answer) {
  const feed = $("#feed");
  const focusedIndex = [...feed.children].findIndex((card) => card.contains(document.activeElement));
  feed.replaceChildren(...answer.items.map(garmentCard));
  // The time from navigation until the first feed is drawn, for benchmarks and real-user monitoring.
  if (performance.getEntriesByName("feed-shown").length === 0) performance.mark("feed-shown");
  $("#feed-note").textContent = answer.cold_start
    ? "Popular right now. Tell us what you like and the feed follows you."
    : `Based on ${answer.history_size} things you did.`;
  if (focusedIndex >= 0) {
    // The card with the focus may be gone (seen garments leave the feed): keep keyboard users in place.
    const card = feed.children[Math.min(focusedIndex, feed.children.length - 1)];
    (card ? card.querySelector("button") : $("#feed-heading")).focus();
  }
}

async function refreshFeed(expectedHistory = 0) {
  const started = performance.now();
  let answer = await api.recommendations(state.userId, state.bodyId, FEED_SIZE);
  // An interaction travels through Kafka to the recommender: wait until the answer reflects it.
  while (answer.history_size < expectedHistory && performance.now() - started < FRESH_FEED_DEADLINE_MS) {
    await new Promise((resolve) => setTimeout(resolve, FRESH_FEED_POLL_MS));
    answer = await api.recommendations(state.userId, state.bodyId, FEED_SIZE);
  }
  state.historySize = answer.history_size;
  renderFeed(answer);
}

async function interact(garment, type, then) {
  try {
    await api.recordInteraction(state.userId, garment.garment_id, type);
    if (then) await then();
    say(`${words(type)}: ${garment.name}. Your feed is updated.`);
    await Promise.all([refreshFeed(state.historySize + 1), refreshOutfits()]);
  } catch (error) {
    showError(error);
  }
}

// --- try-on and outfits ---------------------------------------------------------------------

const VERDICT_WORDS = { tight: "Tight", fitting: "Fits", loose: "Loose", short: "Short", long: "Long", unspecified: "–" };

function easeText(mm) {
  return `${mm >= 0 ? "+" : "−"}${Math.abs(mm / 10).toFixed(1)} cm`;
}

// Sizes of each garment with a chart, from its size advice for the body; the advised one is chosen.
async function adviseSizes() {
  if (!state.bodyId) return;
  const pending = state.tryingOn.filter((item) => item.garment.has_size_chart && item.sizes === null);
  await Promise.all(pending.map(async (item) => {
    const advice = await api.sizeAdvice(state.bodyId, item.garment.garment_id);
    item.sizes = advice.fits.map((fit) => fit.label);
    item.advised = advice.recommended_size;
    if (!item.size) item.size = advice.recommended_size;
  }));
}

function sizeChooser(item, index) {
  const id = `size-${index}`;
  if (!item.sizes) {
    const text = item.garment.has_size_chart ? "Your size" : "No size chart: shown at your size";
    return [element("span", { className: "size-note", textContent: text })];
  }
  const select = element(
    "select",
    { id, onchange: () => { item.size = select.value; drawTryOn().catch(showError); } },
    ...item.sizes.map((label) =>
      element("option", { value: label, textContent: label === item.advised ? `${label} (advised)` : label, selected: label === item.size })),
  );
  return [element("label", { htmlFor: id, textContent: `Size of ${item.garment.name}` }), select];
}

// The list of garments tried on, each with its colour picture and its size; rebuilt when garments change.
function listTryingOn() {
  $("#selected").replaceChildren(...state.tryingOn.map((item, index) =>
    element(
      "li",
      { dataset: { garmentId: item.garment.garment_id } },
      element("img", { src: api.pictureUrl(item.garment, 96), alt: "", width: 48, height: 48 }),
      element("span", { className: "name", textContent: item.garment.name }),
      ...sizeChooser(item, index),
    )));
  $("#clear-tryon").hidden = state.tryingOn.length === 0;
  $("#buy-tryon").hidden = state.tryingOn.length === 0;
}

function showFits(answer) {
  const names = new Map(state.tryingOn.map((item) => [item.garment.garment_id, item.garment.name]));
  const rows = answer.fits.flatMap((fit) => {
    const name = `${names.get(fit.garment_id) || fit.garment_id}${fit.size_label ? ` (${fit.size_label})` : ""}`;
    if (fit.measurements.length === 0) {
      return [element("tr", {}, element("th", { scope: "row", textContent: name }),
        element("td", { colSpan: 3, textContent: "No size chart: shown at your size" }))];
    }
    return fit.measurements.map((m) => element(
      "tr",
      { className: `fit-${m.verdict}` },
      element("th", { scope: "row", textContent: name }),
      element("td", { textContent: words(m.measurement) }),
      element("td", { className: "verdict", textContent: VERDICT_WORDS[m.verdict] }),
      element("td", { textContent: easeText(m.ease_mm) }),
    ));
  });
  $("#fit-table tbody").replaceChildren(...rows);
  $("#fit-table").hidden = rows.length === 0;
}

function drawModel() {
  const { model } = state;
  if (model.frame || !model.meshes) return;
  model.frame = requestAnimationFrame(() => {
    model.frame = 0;
    const canvas = $("#model");
    const started = performance.now();
    model.viewer.draw(model.yaw);
    // For tests and real-user monitoring: how many paints, and how long the last one took.
    canvas.dataset.paintMs = (performance.now() - started).toFixed(1);
    canvas.dataset.paints = String(Number(canvas.dataset.paints || 0) + 1);
  });
}

function turn(radians) {
  state.model.yaw += radians;
  drawModel();
}

async function showModel(drawn) {
  const buffer = await api.bodyModel(state.bodyId, state.tryingOn);
  const meshes = await parseGlb(buffer);
  if (drawn !== state.drawn) return;
  if (!state.model.viewer) {
    state.model.viewer = createViewer($("#model"));
    $("#model").dataset.viewer = state.model.viewer.kind;
  }
  state.model.viewer.show(meshes);
  state.model.meshes = meshes;
  const names = state.tryingOn.map((item) => item.garment.name).join(", ");
  $("#model").setAttribute("aria-label", names ? `Your body in 3D wearing ${names}` : "Your body in 3D");
  $("#model-figure").hidden = false;
  drawModel();
}

async function showPicture(drawn) {
  const picture = $("#tryon-picture");
  const src = api.tryOnUrl(state.bodyId, state.tryingOn, state.view);
  await new Promise((resolve, reject) => {
    picture.onload = resolve;
    picture.onerror = () => reject(new Error("the try-on picture could not be drawn"));
    picture.src = src;
  });
  if (drawn !== state.drawn) return;
  const names = state.tryingOn.map((item) => `${item.garment.name}${item.size ? ` in ${item.size}` : ""}`).join(", ");
  picture.alt = `You wearing ${names}, seen from the ${state.view}`;
  picture.hidden = false;
}

// The picture, the fit table and (unless only the view changed) the 3D body for what is tried on now.
async function drawTryOn({ viewOnly = false } = {}) {
  state.drawn += 1;
  const drawn = state.drawn;
  const picture = $("#tryon-picture");
  const empty = state.tryingOn.length === 0;
  $("#view-choice").hidden = empty || !state.bodyId;
  if (!state.bodyId) {
    picture.hidden = true;
    $("#fit-table").hidden = true;
    $("#model-figure").hidden = true;
    if (!empty) $("#tryon-note").textContent = "Enter your height and weight to see the garments on your body.";
    return;
  }
  if (empty) {
    picture.hidden = true;
    $("#fit-table").hidden = true;
    $("#tryon-note").textContent = "Choose \"Try on\" on a garment to see it on your body.";
    await showModel(drawn);
    return;
  }
  if (viewOnly) {
    await showPicture(drawn);
    return;
  }
  const [fits] = await Promise.all([api.tryOnFit(state.bodyId, state.tryingOn), showPicture(drawn), showModel(drawn)]);
  if (drawn !== state.drawn) return;
  showFits(fits);
  $("#tryon-note").textContent = "Later garments are drawn over earlier ones. Choose a size to see how it fits.";
}

async function showTryOn() {
  await adviseSizes();
  listTryingOn();
  await drawTryOn();
}

async function putOn(...garments) {
  for (const garment of garments) {
    // One garment per category: a new top replaces the old one.
    state.tryingOn = state.tryingOn.filter((item) =>
      item.garment.category !== garment.category && item.garment.garment_id !== garment.garment_id);
    state.tryingOn.push({ garment, size: "", sizes: null, advised: null });
  }
  state.tryingOn = state.tryingOn.slice(-MAX_TRY_ON);
  await showTryOn();
}

// One order of what is tried on, each garment in the size chosen and with the body: the recommender
// learns from the sizes bought (and from any later return) how garments and this body fit.
async function buyTryingOn() {
  const order = randomId("order-");
  const bought = state.tryingOn.map((item) => ({
    garment_id: item.garment.garment_id,
    type: "purchase",
    session_id: order,
    ...(item.size ? { size: item.size } : {}),
    ...(state.bodyId ? { body_id: state.bodyId } : {}),
  }));
  try {
    await api.recordInteractions(state.userId, bought);
    const names = state.tryingOn.map((item) => (item.size ? `${item.garment.name} in ${item.size}` : item.garment.name));
    say(`Bought: ${names.join(", ")}. Your feed is updated.`);
    await Promise.all([refreshFeed(state.historySize + bought.length), refreshOutfits()]);
  } catch (error) {
    showError(error);
  }
}

async function tryLook(outfit) {
  const garments = outfit.items.map((item) => item.garment);
  try {
    await putOn(...garments);
    for (const garment of garments) await api.recordInteraction(state.userId, garment.garment_id, "try_on");
    say("You are trying on the whole look.");
    await refreshFeed(state.historySize + garments.length);
  } catch (error) {
    showError(error);
  }
}

async function refreshOutfits() {
  const answer = await api.outfits(state.userId, state.bodyId, 3);
  $("#outfits").replaceChildren(
    ...answer.outfits.map((outfit, index) =>
      element(
        "li",
        { className: "outfit" },
        element("ul", { className: "pieces" }, ...outfit.items.map((item) =>
          element("li", {}, element("img", { src: api.pictureUrl(item.garment, 112), alt: item.garment.name, width: 56, height: 56 }),
            element("span", { textContent: `${item.garment.name} · ${adviceText(item.size_advice)}` })))),
        element("button", { type: "button", textContent: "Try this look", ariaLabel: `Try this look: look ${index + 1}`,
          onclick: () => tryLook(outfit) }),
      ),
    ),
  );
}

// --- privacy --------------------------------------------------------------------------------

async function deleteMyData() {
  try {
    await api.deleteMyData(state.userId, state.bodyId);
  } catch (error) {
    showError(error);
    return;
  }
  localStorage.removeItem(BODY_KEY);
  state.userId = randomId("shopper-");
  localStorage.setItem(SHOPPER_KEY, state.userId);
  state.bodyId = null;
  state.tryingOn = [];
  state.model.meshes = null;
  state.historySize = 0;
  $("#body-form").reset();
  $("#body-view").hidden = true;
  $("#measurements tbody").replaceChildren();
  say("Your body and your history were deleted.");
  await Promise.all([refreshFeed(), refreshOutfits(), showTryOn()]);
}

// --- start ----------------------------------------------------------------------------------

async function start() {
  state.userId = localStorage.getItem(SHOPPER_KEY) || randomId("shopper-");
  localStorage.setItem(SHOPPER_KEY, state.userId);
  state.bodyId = localStorage.getItem(BODY_KEY);
  $("#body-form").addEventListener("submit", submitBody);
  $("#delete-data").addEventListener("click", deleteMyData);
  $("#clear-tryon").addEventListener("click", () => { state.tryingOn = []; showTryOn().catch(showError); });
  $("#buy-tryon").addEventListener("click", buyTryingOn);
  for (const radio of document.querySelectorAll("input[name=view]")) {
    radio.addEventListener("change", () => { state.view = radio.value; drawTryOn({ viewOnly: true }).catch(showError); });
  }
  $("#turn-left").addEventListener("click", () => turn(-TURN_STEP));
  $("#turn-right").addEventListener("click", () => turn(TURN_STEP));
  const canvas = $("#model");
  let dragFrom = null;
  canvas.addEventListener("pointerdown", (event) => { dragFrom = event.clientX; canvas.setPointerCapture(event.pointerId); });
  canvas.addEventListener("pointermove", (event) => {
    if (dragFrom === null) return;
    turn((event.clientX - dragFrom) * DRAG_RADIANS_PER_PIXEL);
    dragFrom = event.clientX;
  });
  canvas.addEventListener("pointerup", () => { dragFrom = null; });
  if (state.bodyId) {
    try {
      const response = await fetch(`/v1/bodies/${encodeURIComponent(state.bodyId)}`);
      if (response.ok) {
        showBody(await response.json());
        drawTryOn().catch(showError);
      } else {
        state.bodyId = null;
      }
    } catch {
      state.bodyId = null;
    }
  }
  try {
    await Promise.all([refreshFeed(), refreshOutfits()]);
    document.body.dataset.ready = "true";
  } catch (error) {
    showError(error);
  }
}

start();
