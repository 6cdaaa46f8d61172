// A shopper's visit to the fitting room in Debian's Chromium, driven by playwright-core.
//
// Usage: node tests/storefront/fitting_room.mjs URL OUT_DIR
// Prints one JSON object of what the shopper saw at each step; test_fitting_room.py asserts on it.
// The body form and the first feedback are done with the keyboard alone; axe-core checks the
// page once it shows a body, a feed, a try-on picture with sizes and fit, the 3D body and outfits,
// at a desktop and at a phone's width. Screenshots go to OUT_DIR.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const [url, outDir] = process.argv.slice(2);
const seen = { steps: [] };
const visitStarted = Date.now();
const step = (name) => seen.steps.push(name) && (seen.stepEndMs = { ...seen.stepEndMs, [name]: Date.now() - visitStarted });

const feedIds = (page) => page.$$eval("#feed .card", (cards) => cards.map((card) => card.dataset.garmentId));

// Milliseconds until the feed's garments differ from `before`, or null if they never do.
async function untilFeedChanges(page, before, started) {
  try {
    await page.waitForFunction(
      (previous) => {
        const now = [...document.querySelectorAll("#feed .card")].map((card) => card.dataset.garmentId);
        return now.length > 0 && now.join() !== previous.join();
      },
      before,
      { timeout: 5000, polling: 20 },
    );
  } catch {
    return null;
  }
  return Date.now() - started;
}

// Share of pixels that differ from the bare silhouette's, in the torso and in the head region.
function changeFromSilhouette(page) {
  return page.evaluate(async () => {
    const picture = document.querySelector("#tryon-picture");
    const load = (src) => new Promise((resolve, reject) => {
      const image = new Image();
      image.onload = () => resolve(image);
      image.onerror = reject;
      image.src = src;
    });
    const bodyId = localStorage.getItem("tryon-body-id");
    const bare = await load(`/v1/bodies/${bodyId}/silhouette.png?width=256&height=512`);
    const dressed = await load(picture.src);
    const region = (image, [x, y, width, height]) => {
      const canvas = new OffscreenCanvas(256, 512);
      const context = canvas.getContext("2d");
      // On white, so that a transparent background and an opaque one compare by what shows.
      context.fillStyle = "#fff";
      context.fillRect(0, 0, 256, 512);
      context.drawImage(image, 0, 0, 256, 512);
      return context.getImageData(x, y, width, height).data;
    };
    const changed = (box) => {
      const [a, b] = [region(bare, box), region(dressed, box)];
      let count = 0;
      for (let i = 0; i < a.length; i += 4) {
        if (Math.abs(a[i] - b[i]) + Math.abs(a[i + 1] - b[i + 1]) + Math.abs(a[i + 2] - b[i + 2]) > 40) count += 1;
      }
      return count / (a.length / 4);
    };
    return { torso: changed([80, 130, 96, 130]), head: changed([96, 10, 64, 60]) };
  });
}

// Share of pixels that differ between two pictures of the page's origin, drawn at 256 x 512 on white.
function pictureDifference(page, first, second) {
  return page.evaluate(async ([a, b]) => {
    const pixels = async (src) => {
      const image = new Image();
      await new Promise((resolve, reject) => { image.onload = resolve; image.onerror = reject; image.src = src; });
      const canvas = new OffscreenCanvas(256, 512);
      const context = canvas.getContext("2d");
      context.fillStyle = "#fff";
      context.fillRect(0, 0, 256, 512);
      context.drawImage(image, 0, 0, 256, 512);
      return context.getImageData(0, 0, 256, 512).data;
    };
    const [x, y] = [await pixels(a), await pixels(b)];
    let count = 0;
    for (let i = 0; i < x.length; i += 4) {
      if (Math.abs(x[i] - y[i]) + Math.abs(x[i + 1] - y[i + 1]) + Math.abs(x[i + 2] - y[i + 2]) > 40) count += 1;
    }
    return count / (x.length / 4);
  }, [first, second]);
}

// The try-on picture's address once it differs from `before` and has loaded.
async function newPicture(page, before) {
  await page.waitForFunction((src) => {
    const picture = document.querySelector("#tryon-picture");
    return picture.getAttribute("src") !== src && picture.complete && picture.naturalWidth > 0;
  }, before, { timeout: 20000 });
  return page.getAttribute("#tryon-picture", "src");
}

// The 3D canvas's pixels, kept in the page under `name`; with `before`, the share that differ from those.
function modelPixels(page, name, before) {
  return page.evaluate(([key, previous]) => {
    const canvas = document.querySelector("#model");
    // Copied onto a 2D canvas, which reads a WebGL canvas and a 2D one alike.
    const copy = new OffscreenCanvas(canvas.width, canvas.height).getContext("2d");
    copy.drawImage(canvas, 0, 0);
    const pixels = copy.getImageData(0, 0, canvas.width, canvas.height).data;
    window.modelSnapshots = { ...window.modelSnapshots, [key]: pixels };
    let [painted, changed] = [0, 0];
    const other = previous && window.modelSnapshots[previous];
    for (let i = 0; i < pixels.length; i += 4) {
      if (pixels[i + 3] > 0) painted += 1;
      if (other && Math.abs(pixels[i] - other[i]) + Math.abs(pixels[i + 1] - other[i + 1])
        + Math.abs(pixels[i + 2] - other[i + 2]) + Math.abs(pixels[i + 3] - other[i + 3]) > 40) changed += 1;
    }
    return { painted: painted / (pixels.length / 4), changed: changed / (pixels.length / 4) };
  }, [name, before]);
}

const fitRows = (page) => page.$$eval("#fit-table tbody tr", (rows) => rows.map((row) => [...row.children].map((cell) => cell.textContent)));

async function tabUntil(page, selector, limit = 60) {
  for (let presses = 1; presses <= limit; presses += 1) {
    await page.keyboard.press("Tab");
    if (await page.evaluate((s) => document.activeElement?.matches(s), selector)) return presses;
  }
  throw new Error(`Tab never reached ${selector}`);
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  const failedRequests = [];
  const consoleErrors = [];
  // The failing URL goes with the text: "Failed to load resource" alone does not say what failed.
  page.on("console", (message) => { if (message.type() === "error") consoleErrors.push(`${message.text()} ${message.location().url || ""}`.trim()); });
  page.on("pageerror", (error) => consoleErrors.push(String(error)));
  page.on("requestfailed", (request) => failedRequests.push(request.url()));
  page.on("response", (response) => {
    if (response.status() >= 500) failedRequests.push(`${response.status()} ${response.url()}`);
  });

  // 1. First visit: a cold-start feed.
  let started = Date.now();
  await page.goto(url);
  await page.waitForSelector("body[data-ready=true]", { timeout: 20000 });
  seen.feedShownMs = Date.now() - started;
  seen.firstFeed = await feedIds(page);
  seen.firstFeedNote = await page.textContent("#feed-note");
  step("cold feed");

  // 2. Keyboard only: height, weight, waist and sex, then Enter.
  seen.tabsToHeight = await tabUntil(page, "#height");
  await page.keyboard.type("168");
  await page.keyboard.press("Tab");
  await page.keyboard.type("64");
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  await page.keyboard.type("76");
  await tabUntil(page, "#sex", 3);
  await page.keyboard.press("ArrowDown");
  await tabUntil(page, "#body-form button[type=submit]", 3);
  await page.keyboard.press("Enter");
  await page.waitForSelector("#body-view:not([hidden]) #measurements tbody tr", { timeout: 20000 });
  await page.waitForFunction(() => document.querySelector("#silhouette").naturalWidth > 0, null, { timeout: 10000 });
  seen.measurements = await page.$$eval("#measurements tbody tr", (rows) =>
    rows.map((row) => [...row.children].map((cell) => cell.textContent)));
  seen.status = await page.textContent("#status");
  await page.waitForFunction(() => [...document.querySelectorAll("#feed .advice")].some((p) => p.textContent.startsWith("Size ")),
    null, { timeout: 10000 });
  seen.advice = await page.$$eval("#feed .advice", (items) => items.map((item) => item.textContent));
  step("body by keyboard");

  // 3. Keyboard only: Tab to the first card's "Like" and press Enter; the feed changes.
  await tabUntil(page, "#feed .card button[aria-label^='Like']", 80);
  const liked = await page.evaluate(() => document.activeElement.closest(".card").dataset.garmentId);
  const beforeLike = await feedIds(page);
  started = Date.now();
  await page.keyboard.press("Enter");
  seen.likeFeedChangeMs = await untilFeedChanges(page, beforeLike, started);
  seen.likedGarmentLeftFeed = !(await feedIds(page)).includes(liked);
  seen.focusAfterLike = await page.evaluate(() => document.activeElement?.closest("#feed") !== null);
  step("like by keyboard");

  // 4. Try on a garment of the feed by mouse: one with a size chart when the feed has one.
  const sized = page.locator("#feed .card", { has: page.locator(".advice", { hasText: /^Size / }) });
  const card = (await sized.count()) > 0 ? sized.first() : page.locator("#feed .card").first();
  const tried = await card.getAttribute("data-garment-id");
  const beforeTry = await feedIds(page);
  started = Date.now();
  await card.getByRole("button", { name: /^Try on/ }).click();
  await page.waitForSelector("#tryon-picture:not([hidden])", { timeout: 20000 });
  seen.tryOnMs = Date.now() - started;
  seen.tryOnFeedChangeMs = await untilFeedChanges(page, beforeTry, started);
  seen.tryOnAlt = await page.getAttribute("#tryon-picture", "alt");
  seen.triedGarment = tried;
  step("try on");

  // 5. Add to cart and dislike: each changes the feed.
  for (const [label, key] of [["Add to cart", "cartFeedChangeMs"], ["Dislike", "dislikeFeedChangeMs"]]) {
    const before = await feedIds(page);
    started = Date.now();
    await page.locator("#feed .card").first().getByRole("button", { name: new RegExp(`^${label}`) }).click();
    seen[key] = await untilFeedChanges(page, before, started);
  }
  step("cart and dislike");

  // 6. Complete the look: outfits show, and trying one on redraws the picture.
  seen.outfits = await page.$$eval("#outfits > li", (items) => items.map((item) => item.querySelectorAll(".pieces li").length));
  const pictureBefore = await page.getAttribute("#tryon-picture", "src");
  await page.getByRole("button", { name: "Try this look: look 1" }).click();
  await page.waitForFunction((src) => {
    const picture = document.querySelector("#tryon-picture");
    return picture.getAttribute("src") !== src && picture.complete && picture.naturalWidth > 0;
  }, pictureBefore, { timeout: 20000 });
  seen.lookAlt = await page.getAttribute("#tryon-picture", "alt");
  // Every look has a top or a dress: it must show on the torso and leave the head as it was.
  seen.lookChange = await changeFromSilhouette(page);
  step("outfit");

  // 7. Sizes, views and the 3D body: a garment of the look with a chart is tried in another size.
  await page.waitForSelector("#selected select", { timeout: 20000 });
  await page.waitForSelector("#fit-table:not([hidden]) tbody tr", { timeout: 20000 });
  seen.sizeOptions = await page.$$eval("#selected select", (selects) =>
    selects.map((select) => [...select.options].map((o) => o.textContent)));
  seen.advisedSelected = await page.$eval("#selected select", (select) => select.selectedOptions[0].textContent);
  const frontBefore = await page.getAttribute("#tryon-picture", "src");
  const fitBefore = await fitRows(page);
  const select = page.locator("#selected select").first();
  const labels = await select.evaluate((s) => [...s.options].map((o) => o.value));
  const current = await select.inputValue();
  // The size farthest from the advised one: its fit differs the most.
  const other = labels.indexOf(current) < labels.length / 2 ? labels[labels.length - 1] : labels[0];
  await select.selectOption(other);
  const frontAfter = await newPicture(page, frontBefore);
  await page.waitForFunction((before) => JSON.stringify([...document.querySelectorAll("#fit-table tbody tr")]
    .map((row) => [...row.children].map((cell) => cell.textContent))) !== before, JSON.stringify(fitBefore), { timeout: 20000 });
  seen.sizeChange = { from: current, to: other, pictureChange: await pictureDifference(page, frontBefore, frontAfter),
    fitBefore, fitAfter: await fitRows(page) };
  await page.getByLabel("Back", { exact: true }).check();
  const back = await newPicture(page, frontAfter);
  seen.backView = { src: back, alt: await page.getAttribute("#tryon-picture", "alt"),
    change: await pictureDifference(page, frontAfter, back) };
  step("sizes and views");

  await page.waitForFunction(() => Number(document.querySelector("#model").dataset.paints || 0) > 0, null, { timeout: 20000 });
  // The model of the last size chosen may still be on its way: wait until painting stops.
  let paints = -1;
  while (paints !== (paints = await page.$eval("#model", (c) => c.dataset.paints))) await page.waitForTimeout(300);
  const facing = await modelPixels(page, "facing");
  await page.getByRole("button", { name: "Turn the body right" }).click();
  await page.waitForFunction((before) => document.querySelector("#model").dataset.paints !== before, paints, { timeout: 5000 });
  const turned = await modelPixels(page, "turned", "facing");
  const box = await page.locator("#model").boundingBox();
  const paintsBeforeDrag = await page.$eval("#model", (c) => c.dataset.paints);
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 + 120, box.y + box.height / 2, { steps: 4 });
  await page.mouse.up();
  await page.waitForFunction((before) => document.querySelector("#model").dataset.paints !== before, paintsBeforeDrag,
    { timeout: 5000 });
  // A drag may queue one more paint after the first: let it land.
  await page.waitForTimeout(100);
  await page.waitForFunction(() => true, null, { polling: "raf" });
  const dragged = await modelPixels(page, "dragged", "turned");
  seen.model = { painted: facing.painted, turnChange: turned.changed, dragChange: dragged.changed,
    label: await page.getAttribute("#model", "aria-label"), paintMs: Number(await page.$eval("#model", (c) => c.dataset.paintMs)),
    viewer: await page.$eval("#model", (c) => c.dataset.viewer) };

  // The same shopper in a browser without WebGL: the 2D painter draws the bare body and turns it.
  const plainContext = await browser.newContext({ viewport: { width: 1280, height: 1400 } });
  const plain = await plainContext.newPage();
  const shopper = await page.evaluate(() => [localStorage.getItem("tryon-shopper-id"), localStorage.getItem("tryon-body-id")]);
  await plain.addInitScript(([shopperId, bodyId]) => {
    localStorage.setItem("tryon-shopper-id", shopperId);
    localStorage.setItem("tryon-body-id", bodyId);
  }, shopper);
  plain.on("console", (message) => { if (message.type() === "error") consoleErrors.push(`${message.text()} ${message.location().url || ""}`.trim()); });
  plain.on("pageerror", (error) => consoleErrors.push(String(error)));
  await plain.addInitScript(() => {
    const getContext = HTMLCanvasElement.prototype.getContext;
    HTMLCanvasElement.prototype.getContext = function (kind, ...options) {
      return kind.includes("webgl") ? null : getContext.call(this, kind, ...options);
    };
  });
  await plain.goto(url);
  await plain.waitForFunction(() => Number(document.querySelector("#model").dataset.paints || 0) > 0, null, { timeout: 20000 });
  const plainFacing = await modelPixels(plain, "facing");
  const plainPaints = await plain.$eval("#model", (c) => c.dataset.paints);
  await plain.getByRole("button", { name: "Turn the body right" }).click();
  await plain.waitForFunction((before) => document.querySelector("#model").dataset.paints !== before, plainPaints, { timeout: 5000 });
  const plainTurned = await modelPixels(plain, "turned", "facing");
  seen.painterModel = { viewer: await plain.$eval("#model", (c) => c.dataset.viewer), painted: plainFacing.painted,
    turnChange: plainTurned.changed, paintMs: Number(await plain.$eval("#model", (c) => c.dataset.paintMs)) };
  await plainContext.close();
  await page.locator("#tryon-section").screenshot({ path: path.join(outDir, "fitting-room-tryon.png") });
  step("3D body");

  // 8. Buy what is tried on, in the sizes chosen: one order, each garment with its size and the body.
  const [order] = await Promise.all([
    page.waitForRequest((request) => request.url().endsWith("/interactions") && request.method() === "POST"),
    page.getByRole("button", { name: "Buy in these sizes" }).click(),
  ]);
  seen.order = { interactions: order.postDataJSON().interactions, status: (await order.response()).status(),
    chosenSize: other, bodyId: await page.evaluate(() => localStorage.getItem("tryon-body-id")) };
  await page.waitForFunction(() => document.querySelector("#status").textContent.startsWith("Bought"), null, { timeout: 10000 });
  seen.orderStatus = await page.textContent("#status");
  step("buy");

  // 9. Accessibility of the full page, at a desktop's width and at a phone's.
  await page.screenshot({ path: path.join(outDir, "fitting-room.png"), fullPage: true });
  await page.addScriptTag({ content: readFileSync(require.resolve("axe-core/axe.min.js"), "utf8") });
  const report = await page.evaluate(() => window.axe.run(document));
  seen.axeViolations = report.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
  await page.setViewportSize({ width: 390, height: 844 });
  seen.phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  const phoneReport = await page.evaluate(() => window.axe.run(document));
  seen.axeViolations.push(...phoneReport.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help })));
  await page.screenshot({ path: path.join(outDir, "fitting-room-phone.png"), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 1400 });
  // Up to here every request is the page's own; the deleted body's 404 below is asked on purpose.
  seen.consoleErrors = [...consoleErrors];
  step("axe");

  // 10. Delete my data: the body and the history go, the next feed is a cold start.
  const bodyId = await page.evaluate(() => localStorage.getItem("tryon-body-id"));
  await page.getByRole("button", { name: "Delete my data" }).click();
  await page.waitForFunction(() => document.querySelector("#status").textContent.includes("deleted"), null, { timeout: 10000 });
  seen.deleteStatus = await page.textContent("#status");
  seen.bodyViewHidden = await page.isHidden("#body-view");
  seen.deletedBodyStatus = await page.evaluate(async (id) => (await fetch(`/v1/bodies/${id}`)).status, bodyId);
  await page.waitForFunction(() => document.querySelector("#feed-note").textContent.startsWith("Popular"), null, { timeout: 10000 });
  seen.feedNoteAfterDelete = await page.textContent("#feed-note");
  step("delete my data");
  seen.failedRequests = failedRequests;
} catch (error) {
  seen.error = String(error.stack || error);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(seen) + "\n");
