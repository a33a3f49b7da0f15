import { mkdirSync } from "node:fs";
import type { Browser, BrowserContext, Locator, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, onTestFailed } from "vitest";
import { createApp } from "../api/app.ts";
import type { HealthReport } from "../control-plane/scheduler-status.ts";
import { WORKER_TYPES } from "../domain/scheduler-id.ts";
import {
  launchChromium,
  newLocalContext,
  type ServedApp,
  serveOverHttp,
} from "./support/browser.ts";
import {
  silentLog,
  startHttpServer,
  startTestStack,
  type TestStack,
  testConfig,
  testNamespace,
  triggerRun,
  waitFor,
} from "./support/harness.ts";

/**
 * The operator dashboard in a real Chromium against the real stack (Temporal dev server with
 * its Web UI, PostgreSQL, workers of every type, the API over HTTP).
 */

const TOKEN = "dashboard-browser-token-0123456789";
const SHOTS = "/tmp/livedash-dashboard";

describe("dashboard in a browser", () => {
  let stack: TestStack;
  let api: ServedApp;
  let browser: Browser;
  let temporalUi: string;
  const contexts: BrowserContext[] = [];

  const scheduleId = (id: string) => stack.defs[id]?.scheduleId ?? "";
  const describeSchedule = (id: string) =>
    stack.client.schedule.getHandle(scheduleId(id)).describe();
  const health = async (): Promise<HealthReport> =>
    (await (await fetch(`${api.url}/api/admin/schedulers/health`)).json()) as HealthReport;
  const row = (page: Page, id: string): Locator => page.locator(`tr[data-scheduler="${id}"]`);

  /** A fresh context per test; a screenshot of each of its pages when the test fails. */
  const open = async (name: string, viewport?: { width: number; height: number }) => {
    const opened = await newLocalContext(browser, viewport ? { viewport } : {});
    contexts.push(opened.context);
    onTestFailed(async () => {
      for (const [i, page] of opened.context.pages().entries()) {
        await page
          .screenshot({ path: `${SHOTS}/${name}-failed-${i}.png`, fullPage: true })
          .catch(() => undefined);
      }
    });
    return opened;
  };

  const signIn = async (page: Page) => {
    await page.goto(`${api.url}/admin`);
    await page.getByLabel("Admin token").fill(TOKEN);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Schedulers", level: 2 }).waitFor();
  };

  beforeAll(async () => {
    temporalUi = inject("temporalUiUrl");
    mkdirSync(SHOTS, { recursive: true });
    // First, so a missing Chromium fails with its message before anything else starts.
    browser = await launchChromium();
    stack = await startTestStack({
      env: {
        ADMIN_API_TOKEN: TOKEN,
        SCHEDULER_INSTANCE_ID: "dashboard-test",
        ...(temporalUi ? { TEMPORAL_UI_URL: temporalUi } : {}),
      },
    });
    // Pipeline counts to show: a suspended company (never fetched) with imports in two states.
    const company = await stack.db.company.create({
      data: { name: "Dashboard Co", csvUrl: "http://127.0.0.1:9/never.csv", status: "SUSPENDED" },
    });
    await stack.db.sessionImport.createMany({
      data: ["d-1", "d-2", "d-3"].map((externalSessionId, i) => ({
        companyId: company.id,
        externalSessionId,
        startTimeRaw: "01.05.2025 08:00:00",
        endTimeRaw: "01.05.2025 08:01:00",
        status: i === 2 ? ("FAILED" as const) : ("PENDING" as const),
      })),
    });
    await stack.startWorkers(WORKER_TYPES);
    const app = createApp({
      config: stack.config,
      client: stack.client,
      db: stack.db,
      log: silentLog,
    });
    api = await serveOverHttp(app.fetch);
  });

  afterEach(async () => {
    for (const context of contexts.splice(0)) await context.close().catch(() => undefined);
  });

  afterAll(async () => {
    await browser?.close();
    await api?.close();
    await stack?.close();
  });

  it("signs in with the token; pause with a note, resume and trigger act on the real schedules", async () => {
    const { context, page, blocked } = await open("actions");

    // A wrong token answers 401 with the form again; nothing about the schedulers shows.
    await page.goto(`${api.url}/admin`);
    await page.getByLabel("Admin token").fill("not-the-token-but-long-enough");
    const [refused] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith("/admin/login")),
      page.getByRole("button", { name: "Sign in" }).click(),
    ]);
    expect(refused.status()).toBe(401);
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("not the admin token");
    expect(await page.content()).not.toContain(scheduleId("csv-import"));

    await signIn(page);
    const [cookie] = await context.cookies();
    expect(cookie).toMatchObject({
      name: "livedash_admin",
      httpOnly: true,
      sameSite: "Strict",
      secure: false,
      path: "/",
    });

    // Every scheduler of this stack, with its state.
    const ids = Object.keys(stack.defs);
    expect(await page.locator("tr[data-scheduler]").evaluateAll((rows) => rows.length)).toBe(
      ids.length,
    );
    // Workers poll, but no schedule has run yet: STARTING (first run pending), with the reason.
    for (const id of ids) {
      await expect.poll(() => row(page, id).getAttribute("data-state")).toBe("STARTING");
      expect(await row(page, id).locator(".state").textContent()).toBe("STARTING");
      expect(await row(page, id).textContent()).toContain("first run pending");
      expect(await row(page, id).textContent()).toContain(id);
    }
    // Pipeline counts: waiting, processed, failed imports.
    expect(
      await page.getByRole("region", { name: "CSV imports" }).locator("dd").allTextContents(),
    ).toEqual(["2", "0", "1"]);

    // Pause with a note: the real Temporal schedule is paused with that note.
    const csv = row(page, "csv-import");
    await csv.getByLabel("Pause note for csv-import").fill("dashboard test: <b>maintenance</b>");
    await csv.getByRole("button", { name: "Pause csv-import" }).click();
    await page.waitForURL(/done=pause/);
    const paused = await describeSchedule("csv-import");
    expect(paused.state).toMatchObject({
      paused: true,
      note: "dashboard test: <b>maintenance</b>",
    });
    expect(await page.getByRole("status").textContent()).toBe("Paused csv-import.");
    await page.screenshot({ path: `${SHOTS}/paused.png`, fullPage: true });
    expect(await csv.getAttribute("data-state")).toBe("PAUSED");
    expect(await csv.locator(".state").textContent()).toBe("PAUSED");
    // The note is text, escaped: no element was made of it.
    expect(await csv.locator(".pause-note q").textContent()).toBe(
      "dashboard test: <b>maintenance</b>",
    );
    expect(await csv.locator(".pause-note b").count()).toBe(0);
    expect(await csv.locator(".pause-note").textContent()).toContain("paused by dashboard");
    const audit = await stack.db.schedulerAction.findFirst({
      where: { schedulerId: "csv-import", action: "pause" },
    });
    expect(audit?.actor).toBe("dashboard");

    // Resume: STARTING until the first run since the resume.
    await csv.getByRole("button", { name: "Resume csv-import" }).click();
    await page.waitForURL(/done=resume/);
    expect((await describeSchedule("csv-import")).state.paused).toBe(false);
    expect(await csv.getAttribute("data-state")).toBe("STARTING");
    expect(await csv.getByRole("button", { name: "Pause csv-import" }).isVisible()).toBe(true);

    // Trigger starts a run that shows up on the page.
    expect(await csv.locator('td[data-label="Last run"]').textContent()).toContain("no run yet");
    await csv.getByRole("button", { name: "Trigger csv-import now" }).click();
    await page.waitForURL(/done=trigger/);
    expect(await page.getByRole("status").textContent()).toContain("Triggered csv-import");
    await expect
      .poll(
        async () => {
          await page.reload();
          return row(page, "csv-import").locator('td[data-label="Last run"]').textContent();
        },
        { timeout: 20_000, interval: 500 },
      )
      .toContain("SUCCEEDED");
    expect(await row(page, "csv-import").locator(".recent li").count()).toBe(1);
    expect(
      await row(page, "csv-import").locator('td[data-label="Success rate"]').textContent(),
    ).toContain("100 %");
    await page.screenshot({ path: `${SHOTS}/desktop.png`, fullPage: true });
    expect(blocked).toEqual([]);
  });

  it("a pause made in the Temporal UI shows in health and on the dashboard; unpause there too", async () => {
    expect(temporalUi, "the test Temporal server runs with its Web UI").not.toBe("");
    const { context, page: dashboard } = await open("temporal-ui");
    await signIn(dashboard);
    const link = row(dashboard, "csv-import").getByRole("link", { name: /Temporal UI/ });
    const href = await link.getAttribute("href");
    expect(href).toBe(
      `${temporalUi}/namespaces/${testNamespace()}/schedules/${scheduleId("csv-import")}`,
    );

    const ui = await context.newPage();
    await ui.goto(href ?? "");
    const note = `paused in the Temporal UI ${Date.now()}`;
    // Temporal UI 2.x: a "Pause" button opens a "Pause Schedule?" dialog with a required reason.
    await ui.getByRole("button", { name: "Pause", exact: true }).click({ timeout: 30_000 });
    const pauseDialog = ui.getByRole("dialog", { name: /^Pause Schedule/i });
    await pauseDialog.getByLabel(/Reason/).fill(note);
    await ui.screenshot({ path: `${SHOTS}/temporal-ui-pause-dialog.png` });
    await pauseDialog.getByRole("button", { name: "Pause", exact: true }).click();
    await pauseDialog.waitFor({ state: "hidden" });
    await ui.getByRole("button", { name: "Unpause", exact: true }).waitFor();

    await expect
      .poll(async () => (await health()).details["csv-import"]?.status, { timeout: 10_000 })
      .toBe("PAUSED");
    await dashboard.reload();
    const csv = row(dashboard, "csv-import");
    expect(await csv.getAttribute("data-state")).toBe("PAUSED");
    expect(await csv.locator(".pause-note q").textContent()).toBe(note);
    // Who and when, from Temporal's record of the UI's request (the dev UI has no signed-in
    // user, so no identity: the fallback name, but a real time).
    const pausedBy = await csv.locator(".pause-note").textContent();
    expect(pausedBy).toMatch(/paused by .+ at /);
    expect(await csv.locator(".pause-note time").count()).toBe(1);

    await ui.getByRole("button", { name: "Unpause", exact: true }).click();
    const unpauseDialog = ui.getByRole("dialog", { name: /^Unpause Schedule/i });
    await unpauseDialog.getByLabel(/Reason/).fill("done in the Temporal UI");
    await unpauseDialog.getByRole("button", { name: "Unpause", exact: true }).click();
    await unpauseDialog.waitFor({ state: "hidden" });
    await ui.getByRole("button", { name: "Pause", exact: true }).waitFor();

    // Resumed in the Temporal UI: STARTING until its first run since the resume, not ERROR.
    await expect
      .poll(async () => (await health()).details["csv-import"]?.status, { timeout: 10_000 })
      .toBe("STARTING");
    expect((await describeSchedule("csv-import")).state.paused).toBe(false);
    await dashboard.reload();
    expect(await row(dashboard, "csv-import").getAttribute("data-state")).toBe("STARTING");
  });

  it("stays usable on a narrow screen: no horizontal overflow, every button visible", async () => {
    const { page } = await open("narrow", { width: 390, height: 844 });
    await signIn(page);
    await page.screenshot({ path: `${SHOTS}/narrow.png`, fullPage: true });
    const { scrollWidth, innerWidth } = await page.evaluate<{
      scrollWidth: number;
      innerWidth: number;
    }>("({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth })");
    expect(scrollWidth).toBeLessThanOrEqual(innerWidth);
    for (const id of Object.keys(stack.defs)) {
      for (const name of [`Pause ${id}`, `Trigger ${id} now`]) {
        const button = row(page, id).getByRole("button", { name });
        await button.scrollIntoViewIfNeeded();
        expect(await button.isVisible(), name).toBe(true);
        const box = await button.boundingBox();
        expect(box && box.x >= 0 && box.x + box.width <= innerWidth, name).toBe(true);
      }
    }
  });

  it("refuses actions without a session and from a foreign origin", async () => {
    const post = (path: string, headers: Record<string, string>, body: string) =>
      fetch(`${api.url}${path}`, {
        method: "POST",
        redirect: "manual",
        headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
        body,
      });
    const pause = "action=pause&schedulerId=csv-import&note=csrf";
    const cookie = `livedash_admin=${TOKEN}`;

    const anonymous = await post("/admin/actions", { origin: api.url }, pause);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.text()).toContain('type="password"');
    expect(
      (await post("/admin/actions", { origin: api.url, cookie: "livedash_admin=wrong" }, pause))
        .status,
    ).toBe(401);
    expect(
      (await post("/admin/actions", { origin: "https://evil.example", cookie }, pause)).status,
    ).toBe(403);
    expect((await post("/admin/actions", { origin: "null", cookie }, pause)).status).toBe(403);
    expect(
      (await post("/admin/actions", { "sec-fetch-site": "cross-site", cookie }, pause)).status,
    ).toBe(403);
    expect(
      (await post("/admin/login", { origin: "https://evil.example" }, `token=${TOKEN}`)).status,
    ).toBe(403);
    expect((await describeSchedule("csv-import")).state.paused).toBe(false);

    // The same request from our own origin with the session is accepted (303 back to /admin).
    const own = await post(
      "/admin/actions",
      { origin: api.url, cookie },
      "action=resume&schedulerId=csv-import",
    );
    expect(own.status).toBe(303);
    expect(own.headers.get("location")).toBe(
      "/admin?done=resume&scheduler=csv-import#scheduler-csv-import",
    );
    // An unknown scheduler is a flash message, not an error page.
    const unknown = await post(
      "/admin/actions",
      { origin: api.url, cookie },
      "action=pause&schedulerId=no-such-scheduler",
    );
    expect(unknown.headers.get("location")).toContain("failed=pause&reason=unknown");

    // The sign-in page carries no scheduler data and forbids framing and foreign resources.
    const signInPage = await fetch(`${api.url}/admin`);
    expect(await signInPage.text()).not.toContain(scheduleId("csv-import"));
    expect(signInPage.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(signInPage.headers.get("cache-control")).toBe("no-store");

    // Insecure dev mode (no token): the dashboard and its actions are open, with a warning.
    const insecure = createApp({
      config: testConfig(stack.databaseUrl, {
        REGION: stack.config.region ?? "",
        ADMIN_API_INSECURE: "true",
      }),
      client: stack.client,
      db: stack.db,
      log: silentLog,
    });
    const openPage = await insecure.request("/admin");
    expect(openPage.status).toBe(200);
    const openHtml = await openPage.text();
    expect(openHtml).toContain("Insecure development mode");
    expect(openHtml).toContain(`data-scheduler="csv-import"`);
    const openAction = await insecure.request("/admin/actions", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "action=resume&schedulerId=csv-import",
    });
    expect(openAction.status).toBe(303);

    // Signing out clears the cookie.
    const out = await post("/admin/logout", { origin: api.url, cookie }, "");
    expect(out.status).toBe(303);
    expect(out.headers.get("set-cookie")).toMatch(/^livedash_admin=;.*Max-Age=0/);
  });

  it("shows a running csv-import's progress: companies done of total, rows read, in flight", async () => {
    // 1,000 rows at once (the import commits and heartbeats them), then a slow tail.
    const line = (n: number) =>
      `prog-${n},01.05.2025 08:00:00,01.05.2025 08:05:00,10.0.0.1,NL,english,3,happy,no,no,,2.5,100,0.0010,Greeting,Hello\n`;
    const source = await startHttpServer(async (_req, res) => {
      res.writeHead(200, { "content-type": "text/csv" });
      res.write(Array.from({ length: 1_000 }, (_, i) => line(i)).join(""));
      for (let chunk = 0; chunk < 40 && !res.destroyed; chunk++) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        res.write(Array.from({ length: 50 }, (_, i) => line(1_000 + chunk * 50 + i)).join(""));
      }
      res.end();
    });
    const company = await stack.db.company.create({
      data: { name: "Progress Co", csvUrl: `${source.url}/progress.csv` },
    });
    try {
      const { page } = await open("progress");
      await signIn(page);
      const workflowId = await triggerRun(stack.client, scheduleId("csv-import"));
      const progress = row(page, "csv-import").locator(".progress-summary");
      const shown = await waitFor(
        "the dashboard to show the running run's progress with rows read",
        async () => {
          await page.reload();
          if ((await progress.count()) === 0) return false;
          const text = (await progress.textContent()) ?? "";
          return /[1-9][\d,]* rows read/.test(text) ? text : false;
        },
        { timeoutMs: 30_000, intervalMs: 300 },
      );
      expect(shown).toMatch(/^0 of 1 companies · [\d,]+ rows read · 1 in flight$/);
      expect(await row(page, "csv-import").locator(".progress .muted").textContent()).toContain(
        "updated",
      );

      // Finished: the progress line goes, the run's outcome stays.
      await stack.client.workflow.getHandle(workflowId).result();
      await page.reload();
      expect(await progress.count()).toBe(0);
    } finally {
      await stack.db.company.update({ where: { id: company.id }, data: { status: "SUSPENDED" } });
      await source.close();
    }
  }, 90_000);
});
