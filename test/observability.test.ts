import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { RULES_FILE } from "../scripts/prometheus-rule.ts";
import { freePort } from "../scripts/services/ports.ts";
import {
  startHttpServer,
  startTestStack,
  type TestHttpServer,
  type TestStack,
  waitFor,
} from "./support/harness.ts";
import { spawnApiProcess, spawnWorkerProcess, type WorkerProcess } from "./support/processes.ts";
import { type RunningPrometheus, startPrometheus } from "./support/prometheus.ts";

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string }[];
}
interface Rule {
  alert: string;
  expr: string;
}

const dashboard = JSON.parse(
  readFileSync(resolve("deploy/grafana/dashboards/livedash.json"), "utf8"),
) as { panels: Panel[] };
const panelQueries = dashboard.panels
  .filter((p) => p.type !== "row")
  .flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr })));
const alertRules = (
  parse(readFileSync(RULES_FILE, "utf8")) as { groups: { rules: Rule[] }[] }
).groups.flatMap((g) => g.rules);

/** Grafana's own variables, as Grafana would substitute them for a short range. */
const grafanaVariables = (expr: string) => expr.replaceAll("$__rate_interval", "1m");
const metricNames = (expr: string) => [
  ...new Set(expr.match(/\b(?:livedash|temporal|process|nodejs)_[a-z0-9_]+\b/g) ?? []),
];

/**
 * A real Prometheus (Debian's binary) scrapes a running API process and a worker process (its
 * SDK metrics port) after a real csv-import run; every dashboard query and alert expression is
 * then evaluated through Prometheus' HTTP API.
 */
describe("dashboards and alerts against a real Prometheus", () => {
  let stack: TestStack;
  let source: TestHttpServer;
  let worker: WorkerProcess;
  let api: Awaited<ReturnType<typeof spawnApiProcess>>;
  let prometheus: RunningPrometheus;

  beforeAll(async () => {
    source = await startHttpServer((req, res) => {
      if (req.url === "/export.csv") {
        res.writeHead(200, { "content-type": "text/csv" }).end("o-1,01.05.2025 08:00:00\n");
      } else res.writeHead(404).end("not found");
    });
    stack = await startTestStack({
      env: { ADMIN_API_TOKEN: "observability-admin-token-0123456789", METRICS_CACHE_MS: "500" },
    });
    await stack.db.company.createMany({
      data: [
        { name: "Good Co", csvUrl: `${source.url}/export.csv`, region: stack.config.region },
        { name: "Gone Co", csvUrl: `${source.url}/gone.csv`, region: stack.config.region },
      ],
    });
    const metricsPort = await freePort();
    [worker, api] = await Promise.all([
      spawnWorkerProcess("observability", {
        ...stack.env,
        WORKER_METRICS_PORT: String(metricsPort),
      }),
      spawnApiProcess(stack.env),
    ]);
    await worker.waitReady(90_000);
    expect((await stack.run("csv-import")).result.outcome).toBe("PARTIAL");

    prometheus = await startPrometheus({
      jobs: [
        { name: "livedash-api", targets: [new URL(api.url).host] },
        { name: "livedash-workers", targets: [`127.0.0.1:${metricsPort}`] },
      ],
      ruleFiles: [RULES_FILE],
    });
    // Both targets up with the platform's series in, and enough samples for rate() over the
    // run's counters.
    await waitFor(
      "both targets scraped",
      async () => (await prometheus.query("up == 1")).result.length === 2,
    );
    await waitFor(
      "every scheduler's series scraped",
      async () =>
        (await prometheus.query(`livedash_scheduler_up{region="${stack.config.region}"}`)).result
          .length === Object.keys(stack.defs).length,
    );
    await new Promise((r) => setTimeout(r, 6_000));
  }, 240_000);

  afterAll(async () => {
    await prometheus?.close();
    for (const child of [worker?.child, api?.child])
      if (child?.exitCode === null) child.kill("SIGTERM");
    await Promise.all([worker?.exited, api?.exited]);
    await stack?.close();
    await source?.close();
  });

  it("scrapes the platform's metrics with region labels and standard process metrics", async () => {
    const region = stack.config.region;
    const up = await prometheus.query(`livedash_scheduler_up{region="${region}"}`);
    expect(up.result.length).toBe(Object.keys(stack.defs).length);
    for (const name of ["process_resident_memory_bytes", "nodejs_eventloop_lag_p99_seconds"]) {
      const series = await prometheus.query<{ metric: { job: string } }>(name);
      expect(
        series.result.map((s) => s.metric.job),
        name,
      ).toContain("livedash-api");
    }
    const failing = await prometheus.query<{ value: [number, string] }>(
      `livedash_companies_failing{region="${region}",min_consecutive_failures="1"}`,
    );
    expect(failing.result.map((s) => s.value[1])).toEqual(["1"]);
  });

  it.each(panelQueries)('panel "$title" query returns series: $expr', async ({ expr }) => {
    const { result } = await prometheus.query(grafanaVariables(expr));
    expect(result.length, expr).toBeGreaterThan(0);
  });

  it.each(alertRules)("alert $alert evaluates, over series that exist", async ({ expr }) => {
    await prometheus.query(expr);
    for (const name of metricNames(expr)) {
      const { result } = await prometheus.query(`count(${name})`);
      expect(result.length, `${name} has series`).toBeGreaterThan(0);
    }
  });

  it("loads the rule file and evaluates every rule without error", async () => {
    const rules = await waitFor("the rules evaluated", async () => {
      const response = await fetch(`${prometheus.url}/api/v1/rules`);
      const body = (await response.json()) as {
        data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
      };
      const all = body.data.groups.flatMap((g) => g.rules);
      return all.length === alertRules.length && all.every((r) => r.health !== "unknown")
        ? all
        : undefined;
    });
    expect(rules.filter((r) => r.health !== "ok")).toEqual([]);
  });
});
