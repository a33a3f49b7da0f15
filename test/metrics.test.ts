import { Client, Connection } from "@temporalio/client";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabase, type Database, pgPoolOf } from "../adapters/db/client.ts";
import { metricsRoute } from "../api/metrics.ts";
import {
  createPlatformMetrics,
  type PlatformMetrics,
  RUN_DURATION_BUCKETS,
} from "../control-plane/metrics.ts";
import { RUN_LATENESS_BUCKETS } from "../control-plane/metrics-reads.ts";
import { schedulerStatus, statusOptionsFor } from "../control-plane/scheduler-status.ts";
import { freePort } from "../scripts/services/ports.ts";
import {
  startHttpServer,
  startTestStack,
  type TestHttpServer,
  type TestStack,
} from "./support/harness.ts";

// ---------------------------------------------------------------------------------------------
// A strict reader of the Prometheus text format (0.0.4), so the tests check the exposition too.
// ---------------------------------------------------------------------------------------------

type Labels = Record<string, string>;

interface Series {
  name: string;
  labels: Labels;
  value: number;
}

interface Family {
  name: string;
  help: string;
  type: string;
  series: Series[];
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const META_LINE = new RegExp(`^# (HELP|TYPE) (${NAME}) (.*)$`);
const SAMPLE_LINE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`);
const LABEL_PAIR = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y;
const TYPES = ["counter", "gauge", "histogram", "summary", "untyped"];
const SUFFIXES: Record<string, string[]> = {
  histogram: ["_bucket", "_sum", "_count"],
  summary: ["", "_sum", "_count"],
};

function parseLabels(text: string): Labels {
  const labels: Labels = {};
  LABEL_PAIR.lastIndex = 0;
  while (LABEL_PAIR.lastIndex < text.length) {
    const match = LABEL_PAIR.exec(text);
    if (!match) throw new Error(`malformed labels: {${text}}`);
    const [, name = "", value = ""] = match;
    if (name in labels) throw new Error(`label ${name} repeated in {${text}}`);
    labels[name] = value.replace(/\\n/g, "\n").replace(/\\(["\\])/g, "$1");
  }
  return labels;
}

/** Go's ParseFloat, as Prometheus reads values: Inf and NaN in any case (prom-client: "Nan"). */
function parseValue(text: string): number {
  const special: Record<string, number> = { "+inf": Infinity, "-inf": -Infinity, nan: Number.NaN };
  const value = special[text.toLowerCase()] ?? Number(text);
  if (Number.isNaN(value) && text.toLowerCase() !== "nan") throw new Error(`bad value ${text}`);
  return value;
}

/** Families by name; throws on anything a Prometheus server would reject or mis-read. */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const seriesSeen = new Set<string>();
  let current: Family | undefined;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const meta = META_LINE.exec(line);
    if (meta) {
      const [, kind, name = "", rest = ""] = meta;
      if (kind === "HELP") {
        if (families.has(name)) throw new Error(`family ${name} declared twice`);
        current = { name, help: rest, type: "", series: [] };
        families.set(name, current);
      } else {
        if (current?.name !== name || current.type) throw new Error(`stray TYPE line: ${line}`);
        if (!TYPES.includes(rest)) throw new Error(`unknown type in ${line}`);
        current.type = rest;
      }
      continue;
    }
    if (line.startsWith("#")) continue;
    const sample = SAMPLE_LINE.exec(line);
    if (!sample || !current?.type) throw new Error(`malformed or undeclared sample: ${line}`);
    const [, name = "", labelText = "", valueText = ""] = sample;
    const family = current;
    const suffixes = SUFFIXES[family.type] ?? [""];
    if (!suffixes.some((suffix) => name === family.name + suffix)) {
      throw new Error(`sample ${name} outside its family ${family.name}`);
    }
    const labels = parseLabels(labelText);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seriesSeen.has(key)) throw new Error(`duplicate series ${line}`);
    seriesSeen.add(key);
    family.series.push({ name, labels, value: parseValue(valueText) });
  }
  return families;
}

function sameLabels(a: Labels, b: Labels): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}

/** The value of the one series with exactly these labels, undefined when there is none. */
function sampleValue(families: Map<string, Family>, name: string, labels: Labels = {}) {
  const matches = [...families.values()]
    .flatMap((family) => family.series)
    .filter((series) => series.name === name && sameLabels(series.labels, labels));
  if (matches.length > 1)
    throw new Error(`${matches.length} series ${name}${JSON.stringify(labels)}`);
  return matches[0]?.value;
}

function seriesOf(families: Map<string, Family>, name: string): Series[] {
  return families.get(name)?.series ?? [];
}

/** Histogram buckets rise with `le`, end with +Inf, and +Inf equals _count. */
function expectConsistentHistogram(family: Family) {
  const groups = new Map<string, Series[]>();
  for (const series of family.series) {
    const { le, ...rest } = series.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    groups.set(key, [...(groups.get(key) ?? []), { ...series, labels: le ? { le } : {} }]);
  }
  for (const group of groups.values()) {
    const buckets = group.filter((s) => s.name.endsWith("_bucket"));
    const bounds = buckets.map((s) => parseValue(s.labels.le ?? ""));
    expect(bounds).toEqual([...bounds].sort((a, b) => a - b));
    expect(bounds.at(-1)).toBe(Infinity);
    const counts = buckets.map((s) => s.value);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(group.find((s) => s.name.endsWith("_count"))?.value).toBe(counts.at(-1));
  }
}

// ---------------------------------------------------------------------------------------------

const seconds = (date: Date | null | undefined) => (date ? date.getTime() / 1000 : undefined);

describe("GET /metrics", () => {
  let stack: TestStack;
  let source: TestHttpServer;
  let labels: (schedulerId: string) => { scheduler: string; region: string; schedule_id: string };

  const metricsFor = (
    client: Client,
    db: Database,
    temporalTimeoutMs?: number,
    cacheMs?: number,
  ) => {
    const { config } = stack;
    const statusOptions = statusOptionsFor(config, client, db);
    return createPlatformMetrics({
      db,
      client,
      definitions: () => Object.values(stack.defs),
      schedulerStatus: (def) => schedulerStatus(statusOptions, def),
      temporalTimeoutMs,
      cacheMs,
      region: config.region,
    });
  };

  const scrape = async (metrics: PlatformMetrics) => {
    const app = new Hono().route("/", metricsRoute(metrics));
    const response = await app.request("/metrics");
    const text = await response.text();
    return {
      status: response.status,
      contentType: response.headers.get("content-type"),
      text,
      families: parseExposition(text),
    };
  };

  let live: PlatformMetrics;
  const scrapeLive = () => scrape(live);

  beforeAll(async () => {
    source = await startHttpServer((req, res) => {
      if (req.url === "/export.csv") {
        res
          .writeHead(200, { "content-type": "text/csv" })
          .end(
            "m-1,01.05.2025 08:00:00,01.05.2025 08:01:00\nm-2,01.05.2025 09:00:00,01.05.2025 09:02:00\n",
          );
      } else res.writeHead(404).end("not found");
    });
    stack = await startTestStack();
    labels = (id) => ({
      scheduler: id,
      region: stack.config.region ?? "",
      schedule_id: stack.defs[id]?.scheduleId ?? "",
    });
    await seedPipeline(stack.db, source.url);

    // import-processing and session-processing get no worker, hence no schedule: STOPPED.
    await stack.startWorkers(["csv-import", "batch-processing"]);
    const gone = await stack.db.company.create({
      data: { name: "Gone Co", csvUrl: `${source.url}/gone.csv` },
    });
    expect((await stack.run("csv-import")).result.outcome).toBe("FAILED");
    await stack.db.company.create({
      data: { name: "Live Co", csvUrl: `${source.url}/export.csv` },
    });
    expect((await stack.run("csv-import")).result.outcome).toBe("PARTIAL");
    await stack.db.company.update({ where: { id: gone.id }, data: { status: "SUSPENDED" } });
    expect((await stack.run("csv-import")).result.outcome).toBe("SUCCEEDED");
    await stack.run("batch-processing");
    await stack.client.schedule.getHandle(labels("batch-status").schedule_id).pause("maintenance");
    live = metricsFor(stack.client, stack.db);
  });

  afterAll(async () => {
    await stack?.close();
    await source?.close();
  });

  it("serves valid Prometheus text with HELP and TYPE for every family", async () => {
    const { status, contentType, families } = await scrapeLive();
    expect(status).toBe(200);
    expect(contentType).toBe("text/plain; version=0.0.4; charset=utf-8");
    for (const family of families.values()) {
      // Ours carry the prefix; Node's process metrics keep their standard names.
      expect(family.name).toMatch(/^(livedash|process|nodejs)_[a-z0-9_]+$/);
      expect(family.name).not.toMatch(/^livedash_(process|nodejs)_/);
      expect(family.help).not.toBe("");
      if (family.type === "counter") expect(family.name).toMatch(/_total$/);
      if (family.type === "histogram") expectConsistentHistogram(family);
    }
    const types = Object.fromEntries([...families.values()].map((f) => [f.name, f.type]));
    expect(types).toMatchObject({
      livedash_scheduler_up: "gauge",
      livedash_scheduler_state: "gauge",
      livedash_scheduler_paused: "gauge",
      livedash_scheduler_next_run_timestamp_seconds: "gauge",
      livedash_scheduler_last_run_timestamp_seconds: "gauge",
      livedash_scheduler_last_success_timestamp_seconds: "gauge",
      livedash_scheduler_runs_total: "counter",
      livedash_scheduler_runs_in_progress: "gauge",
      livedash_scheduler_run_duration_seconds: "histogram",
      livedash_imports_waiting: "gauge",
      livedash_imports: "gauge",
      livedash_sessions: "gauge",
      livedash_ai_requests: "gauge",
      livedash_ai_batches: "gauge",
      livedash_ai_cost_eur_total: "counter",
      livedash_ai_tokens_total: "counter",
      livedash_metrics_scrape_errors_total: "counter",
      livedash_scheduler_actions_skipped_overlap_total: "counter",
      livedash_scheduler_actions_missed_catchup_total: "counter",
      livedash_scheduler_interval_seconds: "gauge",
      livedash_scheduler_last_run_lateness_seconds: "gauge",
      livedash_scheduler_run_lateness_seconds: "histogram",
      livedash_task_queue_pollers: "gauge",
      livedash_companies_failing: "gauge",
      // Process metrics share the registry, under their standard names.
      process_cpu_seconds_total: "counter",
      process_resident_memory_bytes: "gauge",
      nodejs_eventloop_lag_seconds: "gauge",
    });
    expect(
      sampleValue(families, "livedash_metrics_scrape_errors_total", { source: "temporal" }),
    ).toBe(0);
    expect(
      sampleValue(families, "livedash_metrics_scrape_errors_total", { source: "database" }),
    ).toBe(0);
  });

  it("counts runs by outcome from the run table", async () => {
    const { families } = await scrapeLive();
    const outcomes = ["SUCCEEDED", "PARTIAL", "FAILED", "CANCELLED", "TIMED_OUT"];
    const counts = (id: string) =>
      Object.fromEntries(
        outcomes.map((outcome) => [
          outcome,
          sampleValue(families, "livedash_scheduler_runs_total", { ...labels(id), outcome }),
        ]),
      );
    expect(counts("csv-import")).toEqual({
      SUCCEEDED: 1,
      PARTIAL: 1,
      FAILED: 1,
      CANCELLED: 0,
      TIMED_OUT: 0,
    });
    // Every scheduler's series exist, zeros included, and match the table.
    const rows = await stack.db.schedulerRun.groupBy({
      by: ["scheduleId", "outcome"],
      _count: { _all: true },
    });
    for (const id of Object.keys(stack.defs)) {
      const expected = Object.fromEntries(
        outcomes.map((outcome) => [
          outcome,
          rows.find((r) => r.scheduleId === labels(id).schedule_id && r.outcome === outcome)?._count
            ._all ?? 0,
        ]),
      );
      expect(counts(id)).toEqual(expected);
    }
    const batchRuns = Object.values(counts("batch-processing"));
    expect(batchRuns.reduce((total: number, n) => total + (n ?? 0), 0)).toBe(1);
    expect(seriesOf(families, "livedash_scheduler_runs_total")).toHaveLength(5 * 5);
    expect(sampleValue(families, "livedash_scheduler_runs_in_progress", labels("csv-import"))).toBe(
      0,
    );
  });

  it("builds the run duration histogram in SQL, consistent with the run table", async () => {
    const { families } = await scrapeLive();
    for (const id of ["csv-import", "batch-processing", "batch-status"]) {
      const runs = await stack.db.schedulerRun.findMany({
        where: { scheduleId: labels(id).schedule_id, durationMs: { not: null } },
        select: { durationMs: true },
      });
      const durations = runs.map((run) => run.durationMs ?? 0);
      const name = "livedash_scheduler_run_duration_seconds";
      for (const bound of RUN_DURATION_BUCKETS) {
        expect(sampleValue(families, `${name}_bucket`, { ...labels(id), le: String(bound) })).toBe(
          durations.filter((ms) => ms <= bound * 1000).length,
        );
      }
      expect(sampleValue(families, `${name}_bucket`, { ...labels(id), le: "+Inf" })).toBe(
        durations.length,
      );
      expect(sampleValue(families, `${name}_count`, labels(id))).toBe(durations.length);
      const sum = durations.reduce((total, ms) => total + ms, 0) / 1000;
      expect(sampleValue(families, `${name}_sum`, labels(id))).toBeCloseTo(sum, 9);
    }
    expect(
      sampleValue(families, "livedash_scheduler_run_duration_seconds_count", labels("csv-import")),
    ).toBe(3);
  });

  it("reports last run and last success times from the run table", async () => {
    const { families } = await scrapeLive();
    const { schedule_id: scheduleId } = labels("csv-import");
    const lastSuccess = await stack.db.schedulerRun.findFirstOrThrow({
      where: { scheduleId, outcome: "SUCCEEDED" },
    });
    const lastStarted = await stack.db.schedulerRun.findFirstOrThrow({
      where: { scheduleId },
      orderBy: { startedAt: "desc" },
    });
    expect(
      sampleValue(
        families,
        "livedash_scheduler_last_success_timestamp_seconds",
        labels("csv-import"),
      ),
    ).toBe(seconds(lastSuccess.finishedAt));
    expect(
      sampleValue(families, "livedash_scheduler_last_run_timestamp_seconds", labels("csv-import")),
    ).toBe(seconds(lastStarted.startedAt));
    // A scheduler that never ran has no last-run series rather than a fake time.
    expect(
      sampleValue(
        families,
        "livedash_scheduler_last_run_timestamp_seconds",
        labels("batch-status"),
      ),
    ).toBeUndefined();
  });

  it("reports each schedule's Temporal state and health", async () => {
    const { families } = await scrapeLive();
    const paused = (id: string) => sampleValue(families, "livedash_scheduler_paused", labels(id));
    const up = (id: string) => sampleValue(families, "livedash_scheduler_up", labels(id));
    const state = (id: string, s: string) =>
      sampleValue(families, "livedash_scheduler_state", { ...labels(id), state: s });

    expect([paused("csv-import"), up("csv-import"), state("csv-import", "RUNNING")]).toEqual([
      0, 1, 1,
    ]);
    expect([paused("batch-status"), up("batch-status"), state("batch-status", "PAUSED")]).toEqual([
      1, 0, 1,
    ]);
    expect(state("batch-status", "RUNNING")).toBe(0);
    // No schedule: nothing to say about pausing, and not up.
    expect([paused("import-processing"), up("import-processing")]).toEqual([undefined, 0]);
    expect(state("import-processing", "STOPPED")).toBe(1);

    for (const id of ["csv-import", "batch-processing", "batch-status"]) {
      const described = await stack.client.schedule.getHandle(labels(id).schedule_id).describe();
      expect(
        sampleValue(families, "livedash_scheduler_next_run_timestamp_seconds", labels(id)),
      ).toBe(seconds(described.info.nextActionTimes[0]));
    }
    expect(
      sampleValue(families, "livedash_scheduler_next_run_timestamp_seconds", labels("csv-import")),
    ).toBeGreaterThan(Date.now() / 1000);
  });

  it("reports the pipeline's imports, stages, requests, batches, cost and tokens", async () => {
    const { families } = await scrapeLive();
    const value = (name: string, l: Labels = {}) => sampleValue(families, name, l);
    // 3 seeded + 2 rows of Live Co's CSV (imported once, then duplicates).
    expect(value("livedash_imports_waiting")).toBe(5);
    expect(
      Object.fromEntries(
        seriesOf(families, "livedash_imports").map((s) => [s.labels.status, s.value]),
      ),
    ).toEqual({ PENDING: 5, PROCESSED: 2, FAILED: 1 });

    expect(seriesOf(families, "livedash_sessions")).toHaveLength(5 * 5);
    expect(value("livedash_sessions", { stage: "TRANSCRIPT_FETCH", status: "COMPLETED" })).toBe(1);
    expect(value("livedash_sessions", { stage: "TRANSCRIPT_FETCH", status: "FAILED" })).toBe(1);
    expect(value("livedash_sessions", { stage: "SESSION_CREATION", status: "COMPLETED" })).toBe(2);
    expect(value("livedash_sessions", { stage: "AI_ANALYSIS", status: "PENDING" })).toBe(1);
    expect(value("livedash_sessions", { stage: "QUESTION_EXTRACTION", status: "SKIPPED" })).toBe(1);
    expect(value("livedash_sessions", { stage: "AI_ANALYSIS", status: "IN_PROGRESS" })).toBe(0);

    expect(
      Object.fromEntries(
        seriesOf(families, "livedash_ai_requests").map((s) => [s.labels.status, s.value]),
      ),
    ).toEqual({
      PENDING_BATCHING: 0,
      BATCHING_IN_PROGRESS: 1,
      PROCESSING_COMPLETE: 1,
      PROCESSING_FAILED: 1,
    });
    expect(value("livedash_ai_batches", { status: "PROCESSED" })).toBe(1);
    expect(value("livedash_ai_batches", { status: "IN_PROGRESS" })).toBe(1);
    expect(value("livedash_ai_batches", { status: "FAILED" })).toBe(0);
    expect(value("livedash_ai_cost_eur_total")).toBeCloseTo(0.0128, 12);
    expect(value("livedash_ai_tokens_total", { kind: "prompt" })).toBe(1350);
    expect(value("livedash_ai_tokens_total", { kind: "completion" })).toBe(320);
  });

  it("reports Temporal's skipped and missed counts and each schedule's interval", async () => {
    const { families } = await scrapeLive();
    for (const id of ["csv-import", "batch-processing", "batch-status"]) {
      const { info } = await stack.client.schedule.getHandle(labels(id).schedule_id).describe();
      const value = (name: string) => sampleValue(families, name, labels(id));
      expect(value("livedash_scheduler_actions_skipped_overlap_total")).toBe(
        info.numActionsSkippedOverlap,
      );
      expect(value("livedash_scheduler_actions_missed_catchup_total")).toBe(
        info.numActionsMissedCatchupWindow,
      );
      const [first, second] = info.nextActionTimes;
      expect(value("livedash_scheduler_interval_seconds")).toBe(
        ((second?.getTime() ?? 0) - (first?.getTime() ?? 0)) / 1000,
      );
    }
    // No schedule, nothing Temporal could say.
    expect(
      sampleValue(
        families,
        "livedash_scheduler_actions_skipped_overlap_total",
        labels("import-processing"),
      ),
    ).toBeUndefined();
  });

  it("reports run lateness (start minus scheduled time) from the run table", async () => {
    const { families } = await scrapeLive();
    const runs = await stack.db.schedulerRun.findMany({
      where: { scheduleId: labels("csv-import").schedule_id, scheduledAt: { not: null } },
      orderBy: { startedAt: "desc" },
    });
    expect(runs).toHaveLength(3);
    const lateness = runs.map(
      (r) => Math.max(0, r.startedAt.getTime() - (r.scheduledAt?.getTime() ?? 0)) / 1000,
    );
    const name = "livedash_scheduler_run_lateness_seconds";
    const l = labels("csv-import");
    expect(sampleValue(families, "livedash_scheduler_last_run_lateness_seconds", l)).toBeCloseTo(
      lateness[0] ?? -1,
      6,
    );
    for (const bound of RUN_LATENESS_BUCKETS) {
      expect(sampleValue(families, `${name}_bucket`, { ...l, le: String(bound) })).toBe(
        lateness.filter((s) => s <= bound).length,
      );
    }
    expect(sampleValue(families, `${name}_count`, l)).toBe(3);
    expect(sampleValue(families, `${name}_sum`, l)).toBeCloseTo(
      lateness.reduce((a, b) => a + b, 0),
      6,
    );
    expectConsistentHistogram(families.get(name) as Family);
  });

  it("counts pollers per task queue whose schedule exists", async () => {
    const { families } = await scrapeLive();
    const pollers = Object.fromEntries(
      seriesOf(families, "livedash_task_queue_pollers").map((s) => [
        s.labels.task_queue,
        [s.labels.region, s.value],
      ]),
    );
    const queue = (id: string) => stack.defs[id]?.taskQueue ?? "";
    // One worker process polls both queues; the two batch schedules share one queue.
    expect(pollers).toEqual({
      [queue("csv-import")]: [stack.config.region, 1],
      [queue("batch-processing")]: [stack.config.region, 1],
    });
  });

  it("carries company import health only as bounded counts", async () => {
    const { families } = await scrapeLive();
    // Gone Co failed twice in a row, then was suspended: only ACTIVE companies count.
    const gone = await stack.db.company.findFirstOrThrow({
      where: { name: "Gone Co" },
      include: { importHealth: true },
    });
    expect(gone.importHealth).toMatchObject({ consecutiveFailures: 2, lastSuccessAt: null });
    expect(gone.importHealth?.lastError).toMatch(/404/);
    expect(
      seriesOf(families, "livedash_companies_failing").map((s) => [s.labels, s.value]),
    ).toEqual(
      [1, 3, 10].map((n) => [
        { region: stack.config.region, min_consecutive_failures: String(n) },
        0,
      ]),
    );
  });

  it("serves scrapes within METRICS_CACHE_MS from one read of the sources", async () => {
    const db = createDatabase(stack.databaseUrl, { poolSize: 4 });
    let queries = 0;
    pgPoolOf(db).on("acquire", () => {
      queries += 1;
    });
    try {
      const cached = metricsFor(stack.client, db, undefined, 60_000);
      const first = await scrape(cached);
      const afterFirst = queries;
      expect(afterFirst).toBeGreaterThan(0);
      // A second scrape within the window: no query at all, the same numbers.
      const second = await scrape(cached);
      expect(queries).toBe(afterFirst);
      const platformLines = (text: string) => text.split("\n").filter((l) => /^livedash_/.test(l));
      expect(platformLines(second.text)).toEqual(platformLines(first.text));
      // Once the window has passed, the next scrape reads again.
      const short = metricsFor(stack.client, db, undefined, 300);
      await scrape(short);
      const afterShort = queries;
      await scrape(short);
      expect(queries).toBe(afterShort);
      await new Promise((resolve) => setTimeout(resolve, 400));
      await scrape(short);
      expect(queries).toBeGreaterThan(afterShort);
    } finally {
      await db.$disconnect();
    }
  });

  it("still answers with the database metrics when Temporal is unreachable", async () => {
    const connection = Connection.lazy({ address: `127.0.0.1:${await freePort()}` });
    try {
      const client = new Client({ connection, namespace: stack.config.temporal.namespace });
      const metrics = metricsFor(client, stack.db, 1_000);
      // Two scrapes at once share one read: one failure, counted once.
      const [first, second] = await Promise.all([scrape(metrics), scrape(metrics)]);
      for (const { status, families } of [first, second]) {
        expect(status).toBe(200);
        const errors = (source: string) =>
          sampleValue(families, "livedash_metrics_scrape_errors_total", { source });
        expect([errors("temporal"), errors("database")]).toEqual([1, 0]);
        expect(sampleValue(families, "livedash_imports_waiting")).toBe(5);
        expect(
          sampleValue(families, "livedash_scheduler_runs_total", {
            ...labels("csv-import"),
            outcome: "FAILED",
          }),
        ).toBe(1);
        // Temporal's own facts are omitted rather than guessed; health says ERROR.
        expect(families.get("livedash_scheduler_paused")?.series).toEqual([]);
        expect(families.get("livedash_scheduler_next_run_timestamp_seconds")?.series).toEqual([]);
        expect(sampleValue(families, "livedash_scheduler_up", labels("csv-import"))).toBe(0);
        expect(
          sampleValue(families, "livedash_scheduler_state", {
            ...labels("csv-import"),
            state: "ERROR",
          }),
        ).toBe(1);
      }
      const third = await scrape(metrics);
      expect(
        sampleValue(third.families, "livedash_metrics_scrape_errors_total", { source: "temporal" }),
      ).toBe(2);
    } finally {
      // The client's gRPC retry timers outlive a call whose deadline the scrape gave up on;
      // closing the channel under them makes the next retry throw outside any call. Every call
      // had a deadline of at most 1.5 s: wait it out first.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      await connection.close();
    }
  });

  it("still answers when the database is unreachable, counting a database error", async () => {
    const db = createDatabase(`postgresql://livedash@127.0.0.1:${await freePort()}/none`);
    try {
      const { status, families } = await scrape(metricsFor(stack.client, db));
      expect(status).toBe(200);
      const errors = (source: string) =>
        sampleValue(families, "livedash_metrics_scrape_errors_total", { source });
      expect([errors("temporal"), errors("database")]).toEqual([0, 1]);
      // Declared, but without samples: unknown is not zero.
      expect(families.get("livedash_imports_waiting")?.series).toEqual([]);
      expect(families.get("livedash_scheduler_runs_total")?.series).toEqual([]);
      expect(families.get("livedash_ai_cost_eur_total")?.series).toEqual([]);
      expect(seriesOf(families, "process_cpu_seconds_total")).toHaveLength(1);
    } finally {
      await db.$disconnect();
    }
  });
});

/**
 * A suspended company (never imported from, never processed) with imports in every status,
 * two sessions with their stages, AI requests with costs and tokens, and two batches.
 */
async function seedPipeline(db: Database, sourceUrl: string) {
  const company = await db.company.create({
    data: { name: "Seed Co", status: "SUSPENDED", csvUrl: `${sourceUrl}/seed.csv` },
  });
  const importRow = (externalSessionId: string, status: "PENDING" | "PROCESSED" | "FAILED") =>
    db.sessionImport.create({
      data: {
        companyId: company.id,
        externalSessionId,
        startTimeRaw: "01.05.2025 08:00:00",
        endTimeRaw: "01.05.2025 08:05:00",
        status,
      },
    });
  for (const id of ["p-1", "p-2", "p-3"]) await importRow(id, "PENDING");
  await importRow("f-1", "FAILED");

  const session = async (
    externalId: string,
    stages: Record<
      | "CSV_IMPORT"
      | "TRANSCRIPT_FETCH"
      | "SESSION_CREATION"
      | "AI_ANALYSIS"
      | "QUESTION_EXTRACTION",
      "PENDING" | "COMPLETED" | "FAILED" | "SKIPPED"
    >,
  ) => {
    const imported = await importRow(externalId, "PROCESSED");
    return db.session.create({
      data: {
        companyId: company.id,
        importId: imported.id,
        startTime: new Date("2025-05-01T08:00:00Z"),
        endTime: new Date("2025-05-01T08:05:00Z"),
        processingStatuses: {
          create: Object.entries(stages).map(([stage, status]) => ({
            stage: stage as keyof typeof stages,
            status,
          })),
        },
      },
    });
  };
  const analysed = await session("s-1", {
    CSV_IMPORT: "COMPLETED",
    TRANSCRIPT_FETCH: "COMPLETED",
    SESSION_CREATION: "COMPLETED",
    AI_ANALYSIS: "COMPLETED",
    QUESTION_EXTRACTION: "COMPLETED",
  });
  const waiting = await session("s-2", {
    CSV_IMPORT: "COMPLETED",
    TRANSCRIPT_FETCH: "FAILED",
    SESSION_CREATION: "COMPLETED",
    AI_ANALYSIS: "PENDING",
    QUESTION_EXTRACTION: "SKIPPED",
  });

  const done = await db.aIBatchRequest.create({
    data: { companyId: company.id, status: "PROCESSED", requestCount: 1 },
  });
  const open = await db.aIBatchRequest.create({
    data: { companyId: company.id, status: "IN_PROGRESS", requestCount: 1 },
  });
  const request = { companyId: company.id, model: "gpt-4o-mini" };
  await db.aIProcessingRequest.createMany({
    data: [
      {
        ...request,
        sessionId: analysed.id,
        batchId: done.id,
        processingStatus: "PROCESSING_COMPLETE",
        promptTokens: 1200,
        completionTokens: 300,
        totalCostEur: 0.0123,
      },
      {
        ...request,
        sessionId: waiting.id,
        processingStatus: "PROCESSING_FAILED",
        promptTokens: 150,
        completionTokens: 20,
        totalCostEur: 0.0005,
      },
      {
        ...request,
        sessionId: waiting.id,
        batchId: open.id,
        processingStatus: "BATCHING_IN_PROGRESS",
      },
    ],
  });
}
