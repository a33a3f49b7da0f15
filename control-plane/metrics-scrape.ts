import type { Client } from "@temporalio/client";
import type { Database } from "../adapters/db/client.ts";
import { type FailingCount, failingCompanyCounts } from "../adapters/db/company-import-health.ts";
import { Prisma } from "../adapters/db/generated/prisma/client.ts";
import type { Logger } from "../adapters/logger.ts";
import { isSuccessfulOutcome } from "../domain/run-outcome.ts";
import { type LatenessTotals, readLateness } from "./metrics-reads.ts";
import type { SchedulerDefinition } from "./scheduler-registry.ts";
import type { SchedulerStatus } from "./scheduler-status.ts";

/**
 * The read behind one Prometheus scrape: every scheduler's status (the same derived state as
 * the health endpoint), the run table's aggregates and the pipeline's counts, in one snapshot.
 * A source that fails leaves its part undefined, so its metrics are omitted, not zeroed.
 */

/** Upper bounds (seconds) of the run duration histogram: sub-second runs up to an hour. */
export const RUN_DURATION_BUCKETS = [
  0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
] as const;

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

export type ScrapeSource = "temporal" | "database";

export interface RunTotals {
  /** Runs per outcome, RUNNING included. */
  byOutcome: Map<string, number>;
  /** Cumulative counts per RUN_DURATION_BUCKETS bound, of finished runs. */
  buckets: number[];
  finished: number;
  durationSeconds: number;
  lastStartedAt: Date | undefined;
  lastSuccessAt: Date | undefined;
}

export interface SchedulerView {
  def: SchedulerDefinition;
  /** Undefined when the status could not be computed (database unavailable). */
  status: SchedulerStatus | undefined;
  /** Undefined when the run table could not be read. */
  runs: RunTotals | undefined;
}

export interface PipelineCounts {
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
export interface Snapshot {
  schedulers: SchedulerView[];
  pipeline: PipelineCounts | undefined;
  /** Undefined when the run table could not be read. */
  lateness: Map<string, LatenessTotals> | undefined;
  companiesFailing: FailingCount[] | undefined;
  region: string;
}

export async function readSnapshot(
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

export function emptyRunTotals(): RunTotals {
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
  const successAt = isSuccessfulOutcome(row.outcome) ? row.lastFinishedAt : null;
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
