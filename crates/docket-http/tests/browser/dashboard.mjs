// Drives docket's operator dashboard in headless Chromium (the system's, through
// playwright-core; no browser download). Run by tests/browser.rs:
//
//   node dashboard.mjs <base-url> <admin-api-key> <screenshot-dir>
//
// The server it talks to has a `test.flaky` job that failed for good on its first run (it
// succeeds when retried), one cron schedule, maintenance jobs (the leader's sweep and
// cleanup), and a worker that died (its lease lapsed) holding a running job. Exits non-zero
// on the first failed check.

import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const [base, key, shots] = process.argv.slice(2);
if (!base || !key || !shots) {
  console.error("usage: node dashboard.mjs <base-url> <admin-api-key> <screenshot-dir>");
  process.exit(2);
}
fs.mkdirSync(shots, { recursive: true });
const executablePath = process.env.DOCKET_CHROMIUM || "/usr/bin/chromium";
const profile = process.env.DOCKET_PROFILE_DIR || fs.mkdtempSync(path.join(os.tmpdir(), "docket-chromium-"));
const WIDE = { width: 1280, height: 800 };
const NARROW = { width: 390, height: 844 };
const started = Date.now();
const log = (...a) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s]`, ...a);

function check(cond, msg) {
  if (!cond) throw new Error("check failed: " + msg);
  log("ok:", msg);
}

const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: WIDE,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const origin = new URL(base).origin;
// Nothing but the server under test: any other request is refused.
await context.route("**/*", (route) => {
  const url = route.request().url();
  if (url.startsWith(origin + "/") || url === origin) return route.continue();
  log("blocked a request to", url);
  return route.abort();
});

const page = context.pages()[0] || (await context.newPage());
page.setDefaultTimeout(30_000);
page.on("pageerror", (e) => {
  console.error("page error:", e.message);
  process.exitCode = 1;
});
// The server's Content-Security-Policy must not have to refuse anything the pages do.
page.on("console", (m) => {
  if (/Content Security Policy/i.test(m.text())) {
    console.error("CSP violation:", m.text());
    process.exitCode = 1;
  }
});
page.on("dialog", (d) => d.accept());
let eventStreams = 0;
page.on("request", (r) => {
  if (new URL(r.url()).pathname === "/ui/events") eventStreams += 1;
});

// The message an action left on the page it led to.
async function flash() {
  const f = page.locator("#flash");
  await f.waitFor();
  return (await f.textContent()).trim();
}

// Whether an element lies wholly within the viewport's width, its text not cut off, and
// nothing drawn over its middle.
async function readable(locator) {
  const box = await locator.boundingBox();
  const width = page.viewportSize().width;
  const ok = await locator.evaluate((el) => {
    const r = el.getBoundingClientRect();
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + Math.min(r.height / 2, 10));
    return el.scrollWidth <= el.clientWidth + 1 && (hit === el || el.contains(hit));
  });
  return box !== null && box.width > 0 && box.x >= 0 && box.x + box.width <= width + 0.5 && ok;
}

async function shoot(name) {
  for (const [label, size] of [["1280", WIDE], ["390", NARROW]]) {
    await page.setViewportSize(size);
    await page.waitForTimeout(150);
    await page.screenshot({ path: path.join(shots, `${name}-${label}.png`), fullPage: true });
  }
  await page.setViewportSize(WIDE);
}

try {
  // --- Log in -------------------------------------------------------------------------------
  await page.goto(base + "/");
  check(new URL(page.url()).pathname === "/ui/login", "an anonymous visit is sent to the login form");
  await shoot("login");
  await page.getByLabel("API key").fill("not-a-key");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByText("That key is not valid.").waitFor();
  check(true, "a wrong key is refused");
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: "Overview" }).waitFor();
  // All cookies: asked for by an http:// URL, Playwright would leave out the Secure one.
  const session = (await context.cookies()).find((c) => c.name === "docket_session");
  check(session && session.httpOnly && session.secure && session.sameSite === "Strict",
    "the session cookie is HttpOnly, Secure and SameSite=Strict (accepted over http://127.0.0.1)");
  check(await page.evaluate(() => !document.cookie.includes("docket_session")), "scripts cannot read the session cookie");

  // --- Dead letters: find the failed job, read its error on a phone, retry it ---------------
  await page.goto(base + "/ui/jobs/failed");
  const flakyRow = page.locator("#dead tr", { hasText: "test.flaky" });
  await flakyRow.first().waitFor();
  check(await flakyRow.count() === 1, "the job that failed for good is in the dead-letter view");
  check((await flakyRow.first().textContent()).includes("fail for good <once>"), "its error is shown, escaped");
  await page.setViewportSize(NARROW);
  await page.waitForTimeout(150);
  const errorCell = flakyRow.first().locator("td.error-cell");
  check(await readable(errorCell), "at 390 px the error cell lies within the screen, its text whole");
  check(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
    "at 390 px the dead-letter page does not scroll sideways");
  await page.setViewportSize(WIDE);
  await shoot("dead-letters");
  const jobId = (await flakyRow.first().locator("td.num a").first().textContent()).trim();

  // "Retry every failed job" asks first, saying how many; cancelling retries nothing.
  await page.getByRole("button", { name: "Retry every failed job" }).click();
  await page.getByRole("heading", { name: "Retry every failed job?" }).waitFor();
  check((await page.locator("#confirm").textContent()).includes("1 job"),
    "retrying every failed job asks first, saying how many");
  await shoot("confirm-retry");
  await page.getByRole("link", { name: "Cancel" }).click();
  await page.waitForURL(base + "/ui/jobs/failed");
  await flakyRow.first().waitFor();
  check(await flakyRow.count() === 1, "cancelled at the confirmation, nothing is retried");
  // Retry the selected job: asked, confirmed, and the answer says what was done.
  await flakyRow.first().getByRole("checkbox").check();
  await page.getByRole("button", { name: "Retry selected" }).click();
  await page.getByRole("heading", { name: "Retry 1 job selected?" }).waitFor();
  await page.getByRole("button", { name: "Retry 1 job" }).click();
  await page.waitForURL(base + "/ui/jobs/failed");
  check(await flash() === "1 job retried.", "the confirmed retry answers “1 job retried.”");
  await page.goto(`${base}/ui/jobs/${jobId}`);
  check(await page.locator("#flash").count() === 0, "the message shows once");
  await page.locator("#job-state .badge.state-completed").first().waitFor();
  check(true, `job ${jobId} completes after the retry`);
  check(await page.locator("#job-state table tbody tr").count() === 2, "the job page lists both attempts");
  await shoot("job");

  // --- Pause the default queue (asked first); the documents list says so; an upload waits ---
  await page.goto(base + "/ui/queues");
  await page.getByRole("button", { name: "Pause queue default" }).click();
  await page.getByRole("heading", { name: "Pause queue default?" }).waitFor();
  await shoot("confirm-pause");
  await page.getByRole("link", { name: "Cancel" }).click();
  await page.waitForURL(base + "/ui/queues");
  check((await page.locator('#queue-table tr[data-queue="default"] .badge').textContent()).trim() === "running",
    "cancelled at the confirmation, the queue runs on");
  await page.getByRole("button", { name: "Pause queue default" }).click();
  await page.getByRole("heading", { name: "Pause queue default?" }).waitFor();
  await page.locator("#confirm").getByRole("button", { name: "Pause queue default" }).click();
  await page.waitForURL(base + "/ui/queues");
  await page.locator('#queue-table tr[data-queue="default"] .badge', { hasText: "paused" }).waitFor();
  check((await flash()).startsWith("Queue default paused"), "the confirmed pause pauses the queue, and says so");

  await page.goto(base + "/ui/documents");
  const notice = page.locator('#paused-queues [data-paused-queue="default"]');
  await notice.waitFor();
  check(/Queue default is paused \(since .* ago\)/.test(await notice.textContent()),
    "the documents list says the default queue is paused, and since when");
  check(await notice.getByRole("button", { name: "Resume queue default" }).count() === 1,
    "with a button that resumes it");
  const text = "# Lighthouse log\n\n" + Array.from({ length: 100 }, (_, i) =>
    `Entry ${i}: the keeper noted a passing ship, the weather, and the state of the lamp.`).join("\n\n");
  await page.getByLabel("Upload a document").setInputFiles({
    name: "lighthouse <log>.md",
    mimeType: "text/markdown",
    buffer: Buffer.from(text),
  });
  await page.getByRole("button", { name: "Upload" }).click();
  await page.waitForURL(base + "/ui/documents");
  check(await flash() === "lighthouse <log>.md uploaded: queued for processing.",
    "the upload answers with what it did, the name escaped");
  const docRow = page.locator("#doc-list tr", { hasText: "lighthouse <log>.md" });
  await docRow.waitFor();
  check(true, "the uploaded document is listed, its name escaped");
  await page.waitForTimeout(2500);
  check((await docRow.locator(".badge").first().textContent()).trim() === "queued",
    "while its queue is paused the document waits, queued");
  check((await docRow.locator(".pct").textContent()).trim() === "0 %", "its progress bar shows 0 %");
  await shoot("documents-waiting");

  // Resume from a second tab; the first one is never reloaded.
  await page.evaluate(() => { window.__notReloaded = true; });
  const other = await context.newPage();
  await other.goto(base + "/ui/queues");
  await shootOther(other, "queues-paused");
  await other.getByRole("button", { name: "Resume queue default" }).click();
  await other.locator('#queue-table tr[data-queue="default"] .badge', { hasText: "running" }).waitFor();
  check((await other.locator("#flash").textContent()).trim() === "Queue default resumed: its jobs start again.",
    "resuming says so");
  await other.close();
  await page.bringToFront();
  await docRow.locator(".pct", { hasText: "100 %" }).waitFor({ timeout: 60_000 });
  check(await page.evaluate(() => window.__notReloaded === true), "the progress bar reached 100 % without a reload");
  check((await docRow.locator("progress").getAttribute("value")) === "100", "the <progress> element's value is 100");
  check((await docRow.locator(".badge").first().textContent()).trim() === "completed", "the document is completed");
  check(eventStreams > 0, "the page follows the server's progress events (/ui/events)");
  check(await page.locator("#paused-queues .notice").count() === 0, "the paused-queue notice went by itself");
  await shoot("documents");

  // --- A document's chunks, a page at a time --------------------------------------------------
  await docRow.getByRole("link").click();
  await page.locator("ol.chunks li").first().waitFor();
  const docUrl = page.url();
  const range = (await page.locator("#chunk-range").textContent()).trim();
  const total = Number(/of (\d+) ·/.exec(range)[1]);
  const pages = Math.ceil(total / 20);
  check(total > 40 && range === `Chunks 1–20 of ${total} · page 1 of ${pages}`,
    `the document page says which of its ${total} chunks it shows`);
  check(await page.locator("ol.chunks li").count() === 20, "and shows 20 of them, not all");
  check(await page.evaluate(() => document.documentElement.scrollHeight) < 8000, "so the page stays short");
  await shoot("document");
  await page.getByRole("link", { name: "Next page ›" }).click();
  await page.waitForURL(/\?page=2/);
  await page.locator("#chunk-range", { hasText: "Chunks 21–" }).waitFor();
  check(await page.locator("ol.chunks li").first().locator(".meta").textContent().then((t) => t.startsWith("#20 ")),
    "“Next page” shows the next 20 chunks");
  await page.getByRole("link", { name: "Last page »" }).click();
  await page.locator("#chunk-range", { hasText: `page ${pages} of ${pages}` }).waitFor();
  check(await page.locator("ol.chunks li").count() === total - 20 * (pages - 1), "the last page holds the rest");
  await page.getByRole("link", { name: "‹ Previous page" }).click();
  await page.locator("#chunk-range", { hasText: `page ${pages - 1} of ${pages}` }).waitFor();
  check(true, "“Previous page” goes back one page");
  const past = await page.goto(`${docUrl}?page=${pages + 1}`);
  check(past.status() === 404 && /is past the last page: this document's \d+ chunks fill \d+ pages of 20/.test(await page.locator("main").textContent()),
    "a page past the last is answered clearly");

  // --- Every other page ------------------------------------------------------------------------
  await page.goto(base + "/");
  await page.locator("#kinds").getByText("test.flaky").waitFor();
  check(await page.locator("#throughput rect.c").count() > 0, "the throughput chart has bars");
  const crashed = page.locator('#workers tr[data-worker="crashed-worker"]');
  check((await crashed.locator("td").nth(1).textContent()).trim() === "dead",
    "the overview shows a worker past its lease as dead");
  check(await page.locator("#workers tr[data-worker] td:nth-child(2)", { hasText: "live" }).count() >= 1,
    "and the server's own worker as live");
  await shoot("overview");

  // Jobs: maintenance jobs hidden until asked for.
  await page.goto(base + "/ui/jobs");
  const sweeps = page.locator("#job-list tbody tr", { hasText: "docket.sweep_documents" });
  check(await page.locator("#job-list tbody tr").count() > 0 && await sweeps.count() === 0,
    "the jobs list shows no maintenance job by default");
  check(/13 maintenance jobs hidden/.test(await page.locator("#maintenance-note").textContent()),
    "and says how many it hides");
  await shoot("jobs");
  await page.getByLabel("Show maintenance jobs").check();
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(/maintenance=1/);
  check(await sweeps.count() === 12 && await page.locator("#job-list tbody tr", { hasText: "docket.cleanup" }).count() === 1,
    "“Show maintenance jobs” shows them");
  await shoot("jobs-maintenance");
  await page.goto(base + "/ui/jobs");
  await page.getByLabel("Kind").selectOption("test.flaky");
  await page.getByLabel("State").selectOption("completed");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(/kind=test.flaky/);
  const rows = page.locator("#job-list tbody tr");
  check(await rows.count() === 1 && (await rows.first().textContent()).includes("test.flaky"),
    "the jobs list filters by kind and state");
  // Stuck: the dead worker's job, with its worker, last heartbeat and running time; cancel it.
  await page.goto(base + "/ui/jobs/stuck");
  const stuckRow = page.locator("#stuck tbody tr", { hasText: "crashed-worker" });
  await stuckRow.waitFor();
  const stuckText = await stuckRow.textContent();
  check(/test\.flaky/.test(stuckText) && /ago/.test(stuckText) && /30\.0 s/.test(stuckText) && /5 min/.test(stuckText),
    "the Stuck page shows the job's kind, its worker's last heartbeat and lease, and its running time");
  await shoot("stuck");
  await stuckRow.getByRole("button", { name: /Cancel job/ }).click(); // confirmed by the dialog handler
  await page.waitForURL(/\/ui\/jobs\/\d+$/);
  await page.locator("#job-state .badge.state-cancelled").first().waitFor();
  check(/^Job \d+ cancelled\.$/.test(await flash()), "cancelling from the Stuck page cancels the job, and says so");
  await page.goto(base + "/ui/jobs/stuck");
  await page.getByText("No stuck jobs").waitFor();
  check(true, "the cancelled job leaves the Stuck page");
  // The audit trail names the action, its actor (the logged-in key) and the job.
  await page.goto(base + "/ui/audit");
  const cancelRow = page.locator("#audit tbody tr", { hasText: "cancel" }).first();
  await cancelRow.waitFor();
  check(/dashboard:/.test(await cancelRow.textContent()),
    "the Audit page records the cancel under the dashboard user");
  await shoot("audit");
  // Cron: run a schedule now; its run shows in the history.
  await page.goto(base + "/ui/queues");
  await page.getByRole("button", { name: "Run nightly-cleanup now" }).click();
  await page.waitForURL(base + "/ui/queues");
  check(/^Schedule nightly-cleanup run now: job \d+ queued\.$/.test(await flash()), "“Run now” says which job it queued");
  await page.locator("#history tr", { hasText: "nightly-cleanup" }).first().waitFor();
  check(true, "“Run now” records a run of the schedule");
  await shoot("queues");

  // Keyboard: the skip link is the first stop, and moves to the content.
  await page.goto(base + "/ui/queues");
  await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement.classList.contains("skip")), "Tab reaches the skip link first");

  // Reprocess, then delete, the document.
  await page.goto(docUrl);
  await page.getByRole("button", { name: "Reprocess" }).click();
  await page.waitForURL(docUrl);
  check(/is being processed again \(generation 2\)/.test(await flash()), "reprocessing says which generation it started");
  await page.locator("#doc-state .badge.state-completed").first().waitFor();
  check(/searchable: 2/.test(await page.locator("#doc-state").textContent()), "reprocessing completes a second generation");
  await page.getByRole("button", { name: "Delete" }).click(); // confirmed by the dialog handler
  await page.waitForURL(base + "/ui/documents");
  check(await flash() === "lighthouse <log>.md deleted, with its chunks and its bytes.", "deleting says what went");
  await page.getByText("No documents yet").waitFor();
  check(true, "a deleted document leaves the list (and its empty state shows)");

  // --- Alerts: the banner on every page, the Alerts page, a silence ---------------------------
  // The server has one alert firing: the queue of the dead worker has no live worker.
  await page.goto(base + "/ui/jobs");
  const banner = page.locator("#alert-banner");
  await banner.waitFor();
  check(/queue_without_worker/.test(await banner.textContent()) && /queue=crashed/.test(await banner.textContent()),
    "a banner on every page names the firing alert and its subject");
  await page.setViewportSize(NARROW);
  check(await readable(banner), "the banner is readable on a phone");
  await page.setViewportSize(WIDE);
  await banner.getByRole("link").first().click();
  await page.getByRole("heading", { name: "Alerts" }).waitFor();
  check(await page.locator("#alerts-open tr", { hasText: "queue_without_worker" }).count() === 1,
    "the banner leads to the Alerts page, which lists the alert");
  await shoot("alerts");
  await page.getByLabel("Rule").selectOption("queue_without_worker");
  await page.getByLabel("Subject (optional)").fill("queue=crashed");
  await page.getByLabel("For").selectOption({ label: "4 hours" });
  await page.getByLabel("Reason").fill("the crashed host is being replaced");
  await page.getByRole("button", { name: "Silence" }).click();
  await page.waitForURL(base + "/ui/alerts");
  check(/^Silenced queue_without_worker \(queue=crashed\) until /.test(await flash()), "silencing says until when");
  check(await page.locator("#alert-banner").count() === 0, "a silenced alert leaves the banner");
  check(/firing \(silenced\)/.test(await page.locator("#alerts-open").textContent()), "the Alerts page marks it silenced");
  await shoot("alerts-silenced");
  await page.locator("#silences").getByRole("button", { name: "End" }).click();
  await page.waitForURL(base + "/ui/alerts");
  await page.locator("#alert-banner").waitFor();
  check(true, "ending the silence brings the banner back");

  // --- Analytics: what outlives the job rows -------------------------------------------------
  await page.getByRole("link", { name: "Analytics" }).click();
  await page.getByRole("heading", { name: "Analytics", level: 1 }).waitFor();
  check(await page.locator("#per-day tbody tr").count() >= 2, "the Analytics page shows throughput per day");
  check(/provider answered <n> after <n> s/.test(await page.locator("#failure-reasons").textContent()),
    "and the top failure reasons, masked");
  await page.setViewportSize(NARROW);
  const reason = page.locator("#failure-reasons tbody tr").first();
  await reason.scrollIntoViewIfNeeded();
  check(await readable(reason), "a failure reason is readable on a phone");
  await page.setViewportSize(WIDE);
  await shoot("analytics");

  // --- Log out ---------------------------------------------------------------------------------
  await page.getByRole("button", { name: "Log out" }).click();
  await page.waitForURL(base + "/ui/login");
  await page.goto(base + "/ui/jobs");
  check(new URL(page.url()).pathname === "/ui/login", "after logging out the pages ask for the key again");
  const csp = (await page.request.get(base + "/ui/login")).headers()["content-security-policy"] || "";
  check(/script-src 'self'/.test(csp) && /frame-ancestors 'none'/.test(csp),
    "the pages are served with a Content-Security-Policy (no inline script, no framing), and broke none of it");
  log("all checks passed");
} catch (e) {
  console.error(e);
  try {
    await page.screenshot({ path: path.join(shots, "failure.png"), fullPage: true });
    console.error("page at failure:", page.url());
  } catch {}
  process.exitCode = 1;
} finally {
  await context.close();
}

async function shootOther(p, name) {
  for (const [label, size] of [["1280", WIDE], ["390", NARROW]]) {
    await p.setViewportSize(size);
    await p.waitForTimeout(150);
    await p.screenshot({ path: path.join(shots, `${name}-${label}.png`), fullPage: true });
  }
  await p.setViewportSize(WIDE);
}
