import type { Client } from "@temporalio/client";
import { Counter, collectDefaultMetrics, type Metric, Registry } from "prom-client";
import type { Database } from "../adapters/db/client.ts";
import {
  FAILING_THRESHOLDS,
  type FailingCount,
  failingCompanyCounts,
} from "../adapters/db/company-import-health.ts";
import { Prisma } from "../adapters/db/generated/prisma/client.ts";
import {
  AIBatchRequestStatus,
  AIRequestStatus,
  ImportStatus,
  ProcessingStage,
  ProcessingStatus,
} from "../adapters/db/generated/prisma/enums.ts";
import type { Logger } from "../adapters/logger.ts";
import {
  emptyLateness,
  type LatenessTotals,
  RUN_LATENESS_BUCKETS,
  readLateness,
} from "./metrics-reads.ts";
import type { SchedulerDefinition } from "./scheduler-registry.ts";
import type { SchedulerState, SchedulerStatus } from "./scheduler-status.ts";

/**
 * Prometheus metrics of the platform, computed at scrape time from Temporal and the database.
 * Nothing is counted in process memory (except scrape errors), so every API replica, with or
 * without workers, reports the same values. One read serves every scrape within `cacheMs`, so
 * several Prometheus servers scraping several replicas do not each run the aggregates.
 * Process metrics keep their standard names (`process_*`, `nodejs_*`) for stock dashboards.
 */

export const METRIC_PREFIX = "livedash_";

/** Upper bounds (seconds) of the run duration histogram: sub-second runs up to an hour. */
export const RUN_DURATION_BUCKETS = [
  0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
] as const;

const FINISHED_OUTCOMES = ["SUCCEEDED", "PARTIAL", "FAILED", "CANCELLED", "TIMED_OUT"] as const;
/** Outcomes that count as a success, as in the health check's lastSuccess. */
const SUCCESSFUL_OUTCOMES: readonly string[] = ["SUCCEEDED", "PARTIAL"];
const SCHEDULER_STATES = [
  "RUNNING",
  "PAUSED",
  "STOPPED",
  "STARTING",
  "ERROR",
] as const satisfies readonly SchedulerState[];

const DEFAULT_TEMPORAL_TIMEOUT_MS = 5_000;

export interface PlatformMetricsDeps {
  db: Database;
  client: Client;
  /** This deployment's schedulers; read on every scrape. */
  definitions: () => SchedulerDefinition[];
  /**
   * The health check's view of one scheduler (control-plane/scheduler-status.ts), so `up` always agrees
   * with the health endpoint. It must use `client`: the scrape's Temporal deadline applies to
   * that client's calls.
   */
  schedulerStatus: (def: SchedulerDefinition) => Promise<SchedulerStatus>;
  /** Deadline of the Temporal calls of one scrape, below Prometheus' scrape timeout. */
  temporalTimeoutMs?: number;
  /** Receives a warning per scrape whose source failed. */
  log?: Logger;
  /** Scrapes within this many ms of a read reuse it (METRICS_CACHE_MS; default 0: none). */
  cacheMs?: number;
  /** Region label of series not tied to a scheduler (REGION; "" without one). */
  region?: string | undefined;
}

export interface PlatformMetrics {
  /** Every platform metric plus the process metrics; render with `registry.metrics()`. */
  registry: Registry;
}

type ScrapeSource = "temporal" | "database";
type Labels = Record<string, string | number>;

interface Sample {
  labels: Labels;
  value: number;
  /** Series name when it differs from the family's (histogram _bucket, _sum, _count). */
  metricName?: string;
}

interface RunTotals {
  /** Runs per outcome, RUNNING included. */
  byOutcome: Map<string, number>;
  /** Cumulative counts per RUN_DURATION_BUCKETS bound, of finished runs. */
  buckets: number[];
  finished: number;
  durationSeconds: number;
  lastStartedAt: Date | undefined;
  lastSuccessAt: Date | undefined;
}

interface SchedulerView {
  def: SchedulerDefinition;
  /** Undefined when the status could not be computed (database unavailable). */
  status: SchedulerStatus | undefined;
  /** Undefined when the run table could not be read. */
  runs: RunTotals | undefined;
}

interface PipelineCounts {
  imports: Map<string, number>;
  /** Keyed by `${stage}/${status}`. */
  stages: Map<string, number>;
  requests: Map<string, number>;
  batches: Map<string, number>;
  costEur: number;
  promptTokens: number;
  completionTokens: number;
}

/** What one scrape read; a source that failed leaves its part undefined. */
interface Snapshot {
  schedulers: SchedulerView[];
  pipeline: PipelineCounts | undefined;
  /** Undefined when the run table could not be read. */
  lateness: Map<string, LatenessTotals> | undefined;
  companiesFailing: FailingCount[] | undefined;
  region: string;
}

interface MetricSpec {
  name: string;
  help: string;
  type: "gauge" | "counter" | "histogram";
  samples(snapshot: Snapshot): Sample[];
}

export function createPlatformMetrics(deps: PlatformMetricsDeps): PlatformMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  // Every metric of one scrape shares one read; concurrent scrapes share it too, and so do
  // scrapes within the cache window after it.
  // A read still running is shared however old; a finished one for cacheMs after it ended.
  let current: { read: Promise<Snapshot>; endedAt?: number } | undefined;
  const snapshot = (): Promise<Snapshot> => {
    const endedAt = current?.endedAt;
    if (!current || (endedAt !== undefined && Date.now() - endedAt >= (deps.cacheMs ?? 0))) {
      const entry: { read: Promise<Snapshot>; endedAt?: number } = {
        read: readSnapshot(deps, (source, reason) => {
          scrapeErrors.inc({ source });
          deps.log?.warn(
            { source, reason },
            "metrics: source unavailable, its metrics are omitted",
          );
        }),
      };
      const ended = (at: number) => () => {
        entry.endedAt = at || Date.now();
      };
      entry.read.then(ended(0), ended(Number.NEGATIVE_INFINITY));
      current = entry;
    }
    return current.read;
  };

  const scrapeErrors = new Counter({
    name: `${METRIC_PREFIX}metrics_scrape_errors_total`,
    help: "Metric reads in this process whose source (temporal, database) could not be read.",
    labelNames: ["source"] as const,
    registers: [registry],
    // Rendered after this scrape's read, so a failure shows in the scrape that hit it.
    collect: async () => {
      await snapshot();
    },
  });
  for (const source of ["temporal", "database"] as const) scrapeErrors.inc({ source }, 0);

  for (const spec of METRICS) {
    // prom-client's Registry renders any registered object through name, help, type and get();
    // its type declarations only admit prom-client's own classes.
    registry.registerMetric(new SnapshotMetric(spec, snapshot) as unknown as Metric);
  }
  return { registry };
}

/**
 * A metric whose samples come from the scrape's snapshot. Unlike prom-client's Gauge, it has
 * no samples at all while its source is unavailable (a Gauge without labels would show 0), and
 * it can render a histogram aggregated in SQL.
 */
class SnapshotMetric {
  readonly name: string;
  readonly help: string;
  readonly type: MetricSpec["type"];
  /** For prom-client's cluster aggregation: every process reads the same sources. */
  readonly aggregator = "first";

  constructor(
    private readonly spec: MetricSpec,
    private readonly snapshot: () => Promise<Snapshot>,
  ) {
    this.name = spec.name;
    this.help = spec.help;
    this.type = spec.type;
  }

  async get() {
    const values = this.spec.samples(await this.snapshot());
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    };
  }

  /** Values live in the sources; there is nothing to reset. */
  reset(): void {}
}

// ---------------------------------------------------------------------------------------------
// Reading the sources
// ---------------------------------------------------------------------------------------------

async function readSnapshot(
  deps: PlatformMetricsDeps,
  onError: (source: ScrapeSource, reason: string) => void,
): Promise<Snapshot> {
  const definitions = deps.definitions();
  const databaseErrors: unknown[] = [];
  const fromDatabase = <T>(work: Promise<T>): Promise<T | undefined> =>
    work.catch((error: unknown) => {
      databaseErrors.push(error);
      return undefined;
    });
  const deadline = Date.now() + (deps.temporalTimeoutMs ?? DEFAULT_TEMPORAL_TIMEOUT_MS);

  const scheduleIds = definitions.map((def) => def.scheduleId);
  const [statuses, runs, pipeline, lateness, companiesFailing] = await Promise.all([
    Promise.all(
      // schedulerStatus reports an unreadable source as an ERROR state naming it; a scheduler
      // whose run table could not be read has no state for the metrics.
      definitions.map(async (def) => {
        const status = await fromDatabase(
          deps.client.withDeadline(deadline, () => deps.schedulerStatus(def)),
        );
        if (status?.unreachable !== "database") return status;
        databaseErrors.push(new Error(status.reason));
        return undefined;
      }),
    ),
    fromDatabase(readRunTotals(deps.db, definitions)),
    fromDatabase(readPipeline(deps.db)),
    fromDatabase(readLateness(deps.db, scheduleIds)),
    fromDatabase(failingCompanyCounts(deps.db)),
  ]);

  const temporalFailure = statuses.find((status) => status && temporalUnreachable(status));
  if (temporalFailure) onError("temporal", temporalFailure.reason ?? "Temporal unavailable");
  if (databaseErrors.length > 0) onError("database", errorMessage(databaseErrors[0]));

  return {
    schedulers: definitions.map((def, i) => ({
      def,
      status: statuses[i],
      runs: runs && (runs.get(def.scheduleId) ?? emptyRunTotals()),
    })),
    pipeline,
    lateness,
    companiesFailing,
    region: deps.region ?? "",
  };
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function temporalUnreachable(status: SchedulerStatus): boolean {
  return status.unreachable === "temporal";
}

interface RunRow {
  scheduleId: string;
  outcome: string;
  runs: number;
  finished: number;
  durationSeconds: number;
  buckets: number[];
  lastStartedAt: Date | null;
  lastFinishedAt: Date | null;
}

/** One aggregate query over the run table: counts, histogram buckets and latest times. */
async function readRunTotals(
  db: Database,
  definitions: SchedulerDefinition[],
): Promise<Map<string, RunTotals>> {
  const scheduleIds = definitions.map((def) => def.scheduleId);
  // durationMs is an integer, so "<= bound in ms" is exactly Prometheus' "le" in seconds.
  const bucketCounts = Prisma.join(
    RUN_DURATION_BUCKETS.map(
      (seconds) =>
        Prisma.sql`count(*) FILTER (WHERE "durationMs" <= ${Math.round(seconds * 1000)})`,
    ),
  );
  const rows = await db.$queryRaw<RunRow[]>`
    SELECT "scheduleId",
           outcome::text AS outcome,
           count(*)::float8 AS runs,
           count("durationMs")::float8 AS finished,
           (coalesce(sum("durationMs"), 0) / 1000.0)::float8 AS "durationSeconds",
           ARRAY[${bucketCounts}]::float8[] AS buckets,
           max("startedAt") AS "lastStartedAt",
           max("finishedAt") AS "lastFinishedAt"
    FROM "SchedulerRun"
    WHERE "scheduleId" = ANY(${scheduleIds}::text[])
    GROUP BY "scheduleId", outcome`;

  const totals = new Map<string, RunTotals>();
  for (const row of rows) {
    const total = totals.get(row.scheduleId) ?? emptyRunTotals();
    totals.set(row.scheduleId, addRunRow(total, row));
  }
  return totals;
}

function emptyRunTotals(): RunTotals {
  return {
    byOutcome: new Map(),
    buckets: RUN_DURATION_BUCKETS.map(() => 0),
    finished: 0,
    durationSeconds: 0,
    lastStartedAt: undefined,
    lastSuccessAt: undefined,
  };
}

function addRunRow(total: RunTotals, row: RunRow): RunTotals {
  const successAt = SUCCESSFUL_OUTCOMES.includes(row.outcome) ? row.lastFinishedAt : null;
  return {
    byOutcome: new Map(total.byOutcome).set(row.outcome, row.runs),
    buckets: total.buckets.map((count, i) => count + (row.buckets[i] ?? 0)),
    finished: total.finished + row.finished,
    durationSeconds: total.durationSeconds + row.durationSeconds,
    lastStartedAt: latest(total.lastStartedAt, row.lastStartedAt),
    lastSuccessAt: latest(total.lastSuccessAt, successAt),
  };
}

function latest(a: Date | undefined, b: Date | null): Date | undefined {
  if (!b) return a;
  return a && a > b ? a : b;
}

/** Pipeline state: one group-by per table. */
async function readPipeline(db: Database): Promise<PipelineCounts> {
  const [imports, stages, requests, batches] = await Promise.all([
    db.sessionImport.groupBy({ by: ["status"], _count: { _all: true } }),
    db.sessionProcessingStatus.groupBy({ by: ["stage", "status"], _count: { _all: true } }),
    db.aIProcessingRequest.groupBy({
      by: ["processingStatus"],
      _count: { _all: true },
      _sum: { totalCostEur: true, promptTokens: true, completionTokens: true },
    }),
    db.aIBatchRequest.groupBy({ by: ["status"], _count: { _all: true } }),
  ]);
  const sum = (pick: (row: (typeof requests)[number]) => number | null) =>
    requests.reduce((total, row) => total + (pick(row) ?? 0), 0);
  return {
    imports: new Map(imports.map((row) => [row.status, row._count._all])),
    stages: new Map(stages.map((row) => [`${row.stage}/${row.status}`, row._count._all])),
    requests: new Map(requests.map((row) => [row.processingStatus, row._count._all])),
    batches: new Map(batches.map((row) => [row.status, row._count._all])),
    costEur: sum((row) => row._sum.totalCostEur),
    promptTokens: sum((row) => row._sum.promptTokens),
    completionTokens: sum((row) => row._sum.completionTokens),
  };
}

// ---------------------------------------------------------------------------------------------
// Metric definitions
// ---------------------------------------------------------------------------------------------

/** `csv-import@us` (an API reporting several regions) is scheduler csv-import, region us. */
function schedulerLabels(def: SchedulerDefinition): Labels {
  const [scheduler = def.id, suffix] = def.id.split("@");
  return { scheduler, region: suffix ?? def.region ?? "", schedule_id: def.scheduleId };
}

/** One sample per scheduler for which `value` is known. */
function perScheduler(
  snapshot: Snapshot,
  value: (view: SchedulerView) => number | undefined,
): Sample[] {
  return snapshot.schedulers.flatMap((view) => {
    const v = value(view);
    return v === undefined ? [] : [{ labels: schedulerLabels(view.def), value: v }];
  });
}

function seconds(date: Date | undefined): number | undefined {
  return date ? date.getTime() / 1000 : undefined;
}

/** One sample per enum value, zeros included, so every series exists from the start. */
function perValue(
  label: string,
  values: readonly string[],
  counts: Map<string, number> | undefined,
): Sample[] {
  if (!counts) return [];
  return values.map((v) => ({ labels: { [label]: v }, value: counts.get(v) ?? 0 }));
}

function pipelineValue(snapshot: Snapshot, pick: (p: PipelineCounts) => number): Sample[] {
  return snapshot.pipeline ? [{ labels: {}, value: pick(snapshot.pipeline) }] : [];
}

function runsByOutcome(snapshot: Snapshot): Sample[] {
  return snapshot.schedulers.flatMap(({ def, runs }) =>
    runs
      ? FINISHED_OUTCOMES.map((outcome) => ({
          labels: { ...schedulerLabels(def), outcome },
          value: runs.byOutcome.get(outcome) ?? 0,
        }))
      : [],
  );
}

function durationHistogram(name: string, snapshot: Snapshot): Sample[] {
  return snapshot.schedulers.flatMap(({ def, runs }) =>
    runs
      ? histogramSamples(name, schedulerLabels(def), RUN_DURATION_BUCKETS, {
          buckets: runs.buckets,
          count: runs.finished,
          sum: runs.durationSeconds,
        })
      : [],
  );
}

function histogramSamples(
  name: string,
  labels: Labels,
  bounds: readonly number[],
  data: { buckets: number[]; count: number; sum: number },
): Sample[] {
  const bucket = (le: number | string, value: number): Sample => ({
    labels: { ...labels, le },
    value,
    metricName: `${name}_bucket`,
  });
  return [
    ...bounds.map((le, i) => bucket(le, data.buckets[i] ?? 0)),
    bucket("+Inf", data.count),
    { labels, value: data.sum, metricName: `${name}_sum` },
    { labels, value: data.count, metricName: `${name}_count` },
  ];
}

const RUN_DURATION = `${METRIC_PREFIX}scheduler_run_duration_seconds`;
const RUN_LATENESS = `${METRIC_PREFIX}scheduler_run_lateness_seconds`;

/** Temporal's schedule counters and the run table's lateness, per schedule. */
const SCHEDULE_METRICS: MetricSpec[] = [
  {
    name: `${METRIC_PREFIX}scheduler_interval_seconds`,
    help: "Time between the schedule's next two actions according to Temporal.",
    type: "gauge",
    samples: (s) =>
      perScheduler(s, ({ status }) => {
        const [first, second] = status?.schedule?.info.nextActionTimes ?? [];
        return first && second ? (second.getTime() - first.getTime()) / 1000 : undefined;
      }),
  },
  {
    name: `${METRIC_PREFIX}scheduler_actions_skipped_overlap_total`,
    help: "Runs Temporal skipped because the previous run was still going (overlap policy).",
    type: "counter",
    samples: (s) =>
      perScheduler(s, ({ status }) => status?.schedule?.info.numActionsSkippedOverlap),
  },
  {
    name: `${METRIC_PREFIX}scheduler_actions_missed_catchup_total`,
    help: "Runs Temporal never started because they fell outside the catch-up window.",
    type: "counter",
    samples: (s) =>
      perScheduler(s, ({ status }) => status?.schedule?.info.numActionsMissedCatchupWindow),
  },
  {
    name: `${METRIC_PREFIX}scheduler_last_run_lateness_seconds`,
    help: "Start minus scheduled time of the latest scheduled run.",
    type: "gauge",
    samples: (s) => perScheduler(s, ({ def }) => s.lateness?.get(def.scheduleId)?.lastSeconds),
  },
  {
    name: RUN_LATENESS,
    help: "Start minus scheduled time of scheduled runs, from the run table.",
    type: "histogram",
    samples: (s) =>
      s.lateness
        ? s.schedulers.flatMap(({ def }) => {
            const l = s.lateness?.get(def.scheduleId) ?? emptyLateness();
            return histogramSamples(RUN_LATENESS, schedulerLabels(def), RUN_LATENESS_BUCKETS, {
              buckets: l.buckets,
              count: l.runs,
              sum: l.sumSeconds,
            });
          })
        : [],
  },
  {
    name: `${METRIC_PREFIX}task_queue_pollers`,
    help: "Workers Temporal saw polling each task queue whose schedule exists (0: no worker).",
    type: "gauge",
    samples: (s) => {
      const queues = new Map<string, Sample>();
      for (const { def, status } of s.schedulers) {
        if (!status?.schedule || status.unreachable) continue;
        const { region } = schedulerLabels(def);
        queues.set(def.taskQueue, {
          labels: { task_queue: def.taskQueue, region: region ?? "" },
          value: status.pollers.length,
        });
      }
      return [...queues.values()];
    },
  },
  {
    name: `${METRIC_PREFIX}companies_failing`,
    help: "ACTIVE companies whose last N or more CSV imports failed, N = min_consecutive_failures.",
    type: "gauge",
    samples: (s) => {
      if (!s.companiesFailing) return [];
      const counts = [...s.companiesFailing];
      // This deployment's region always has its series, zeros included.
      if (!counts.some((c) => c.region === s.region)) {
        for (const n of FAILING_THRESHOLDS)
          counts.push({ region: s.region, minConsecutiveFailures: n, companies: 0 });
      }
      return counts.map((c) => ({
        labels: { region: c.region, min_consecutive_failures: c.minConsecutiveFailures },
        value: c.companies,
      }));
    },
  },
];

const METRICS: MetricSpec[] = [
  {
    name: `${METRIC_PREFIX}scheduler_up`,
    help: "1 when the scheduler is RUNNING as the health check reports it, else 0.",
    type: "gauge",
    samples: (s) => perScheduler(s, ({ status }) => status && Number(status.status === "RUNNING")),
  },
  {
    name: `${METRIC_PREFIX}scheduler_state`,
    help: "1 for the scheduler's current health state (RUNNING, PAUSED, STOPPED, STARTING, ERROR).",
    type: "gauge",
    samples: (s) =>
      s.schedulers.flatMap(({ def, status }) =>
        status
          ? SCHEDULER_STATES.map((state) => ({
              labels: { ...schedulerLabels(def), state },
              value: Number(status.status === state),
            }))
          : [],
      ),
  },
  {
    name: `${METRIC_PREFIX}scheduler_paused`,
    help: "1 when the Temporal schedule is paused, 0 when not; absent when it cannot be read.",
    type: "gauge",
    samples: (s) =>
      perScheduler(s, ({ status }) => status?.schedule && Number(status.schedule.state.paused)),
  },
  {
    name: `${METRIC_PREFIX}scheduler_next_run_timestamp_seconds`,
    help: "Unix time of the schedule's next action according to Temporal.",
    type: "gauge",
    samples: (s) =>
      perScheduler(s, ({ status }) => seconds(status?.schedule?.info.nextActionTimes[0])),
  },
  {
    name: `${METRIC_PREFIX}scheduler_last_run_timestamp_seconds`,
    help: "Unix time the latest recorded run started.",
    type: "gauge",
    samples: (s) => perScheduler(s, ({ runs }) => seconds(runs?.lastStartedAt)),
  },
  {
    name: `${METRIC_PREFIX}scheduler_last_success_timestamp_seconds`,
    help: "Unix time the latest SUCCEEDED or PARTIAL run finished.",
    type: "gauge",
    samples: (s) => perScheduler(s, ({ runs }) => seconds(runs?.lastSuccessAt)),
  },
  {
    name: `${METRIC_PREFIX}scheduler_runs_total`,
    help: "Finished runs by outcome, counted in the run table.",
    type: "counter",
    samples: runsByOutcome,
  },
  {
    name: `${METRIC_PREFIX}scheduler_runs_in_progress`,
    help: "Runs recorded as started and not finished yet.",
    type: "gauge",
    samples: (s) => perScheduler(s, ({ runs }) => runs && (runs.byOutcome.get("RUNNING") ?? 0)),
  },
  {
    name: RUN_DURATION,
    help: "Duration of finished runs, from the run table.",
    type: "histogram",
    samples: (s) => durationHistogram(RUN_DURATION, s),
  },
  ...SCHEDULE_METRICS,
  {
    name: `${METRIC_PREFIX}imports_waiting`,
    help: "Imported CSV rows waiting for import processing (PENDING).",
    type: "gauge",
    samples: (s) => pipelineValue(s, (p) => p.imports.get(ImportStatus.PENDING) ?? 0),
  },
  {
    name: `${METRIC_PREFIX}imports`,
    help: "Imported CSV rows by status.",
    type: "gauge",
    samples: (s) => perValue("status", Object.values(ImportStatus), s.pipeline?.imports),
  },
  {
    name: `${METRIC_PREFIX}sessions`,
    help: "Session processing stages by stage and status.",
    type: "gauge",
    samples: (s) => {
      const stages = s.pipeline?.stages;
      if (!stages) return [];
      return Object.values(ProcessingStage).flatMap((stage) =>
        Object.values(ProcessingStatus).map((status) => ({
          labels: { stage, status },
          value: stages.get(`${stage}/${status}`) ?? 0,
        })),
      );
    },
  },
  {
    name: `${METRIC_PREFIX}ai_requests`,
    help: "AI analysis requests by status.",
    type: "gauge",
    samples: (s) => perValue("status", Object.values(AIRequestStatus), s.pipeline?.requests),
  },
  {
    name: `${METRIC_PREFIX}ai_batches`,
    help: "OpenAI batches by status.",
    type: "gauge",
    samples: (s) => perValue("status", Object.values(AIBatchRequestStatus), s.pipeline?.batches),
  },
  {
    name: `${METRIC_PREFIX}ai_cost_eur_total`,
    help: "Cost in EUR of all AI analysis requests, summed in the request table.",
    type: "counter",
    samples: (s) => pipelineValue(s, (p) => p.costEur),
  },
  {
    name: `${METRIC_PREFIX}ai_tokens_total`,
    help: "Tokens used by AI analysis requests, by kind (prompt, completion).",
    type: "counter",
    samples: (s) =>
      s.pipeline
        ? [
            { labels: { kind: "prompt" }, value: s.pipeline.promptTokens },
            { labels: { kind: "completion" }, value: s.pipeline.completionTokens },
          ]
        : [],
  },
];
