// A screenshot of the fitting room as a given shopper sees it, in Debian's headless Chromium.
//
// Usage: node services/storefront/screenshot.mjs URL OUT_PNG SHOPPER_ID [BODY_ID]
// Opens the page as that shopper (and body), waits for the feed, tries on the first look,
// and writes a full-page PNG. The demo calls it after its shopper session.
import { chromium } from "playwright-core";

const [url, out, shopperId, bodyId] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  await page.addInitScript(([shopper, body]) => {
    localStorage.setItem("tryon-shopper-id", shopper);
    if (body) localStorage.setItem("tryon-body-id", body);
  }, [shopperId, bodyId || ""]);
  await page.goto(url);
  await page.waitForSelector("body[data-ready=true]", { timeout: 30000 });
  const look = page.getByRole("button", { name: "Try this look: look 1" });
  if (bodyId && (await look.count()) > 0) {
    await look.click();
    await page.waitForFunction(() => {
      const picture = document.querySelector("#tryon-picture");
      return !picture.hidden && picture.complete && picture.naturalWidth > 0;
    }, null, { timeout: 30000 });
  }
  await page.screenshot({ path: out, fullPage: true });
} finally {
  await browser.close();
}
