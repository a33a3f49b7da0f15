import { Gauge, type Registry } from "prom-client";
import type { Database } from "../adapters/db/client.ts";
import { Prisma } from "../adapters/db/generated/prisma/client.ts";
import { SUCCESSFUL_RUN_OUTCOMES } from "../domain/run-outcome.ts";
import type { SchedulerDefinition } from "./scheduler-registry.ts";
import { type StageBacklog, withBacklogRule } from "./scheduler-state.ts";
import type { SchedulerStatus } from "./scheduler-status.ts";

export { lagBreach, type StageBacklog } from "./scheduler-state.ts";

/**
 * What waits in PostgreSQL for each stage of the pipeline, and for how long. Temporal's task
 * queues only hold the work a run has already handed out; the real backlog is in these tables,
 * so health, metrics and autoscaling read it here.
 *
 * Stage (scheduler id) -> what waits:
 *   csv-import          ACTIVE companies; age: since the last run that visited every company began
 *   import-processing   PENDING imports; age: the oldest import's createdAt
 *   session-processing  sessions whose AI_ANALYSIS is PENDING; age: the oldest stage row
 *   batch-processing    requests waiting for a batch (PENDING_BATCHING); age: oldest requestedAt
 *   batch-status        batches in flight at OpenAI; age: the oldest batch's createdAt
 */
export const BACKLOG_STAGES = [
  "csv-import",
  "import-processing",
  "session-processing",
  "batch-processing",
  "batch-status",
] as const;
export type BacklogStage = (typeof BACKLOG_STAGES)[number];

export type Backlog = Record<BacklogStage, StageBacklog>;

interface BacklogRow {
  stage: BacklogStage;
  waiting: bigint | number;
  oldest: Date | null;
}

/** One round trip for every stage; `region` restricts it to that region's companies. */
export async function readBacklog(
  db: Database,
  region: string | undefined,
  now = new Date(),
): Promise<Backlog> {
  const inRegion = region ? Prisma.sql`AND c.region = ${region}` : Prisma.empty;
  const rows = await db.$queryRaw<BacklogRow[]>`
    SELECT 'csv-import' AS stage, count(*) AS waiting,
      coalesce(
        (SELECT max(r."startedAt") FROM "SchedulerRun" r
          WHERE r."schedulerId" = 'csv-import' AND r.outcome::text = ANY(${[...SUCCESSFUL_RUN_OUTCOMES]}::text[])
            AND r."scheduleId" = ${csvScheduleId(region)}),
        min(c."createdAt")) AS oldest
    FROM "Company" c WHERE c.status = 'ACTIVE' ${inRegion}
    UNION ALL
    SELECT 'import-processing', count(*), min(si."createdAt")
    FROM "SessionImport" si JOIN "Company" c ON c.id = si."companyId"
    WHERE si.status = 'PENDING' AND c.status = 'ACTIVE' ${inRegion}
    UNION ALL
    SELECT 'session-processing', count(*), min(sps."createdAt")
    FROM "SessionProcessingStatus" sps
    JOIN "Session" s ON s.id = sps."sessionId"
    JOIN "Company" c ON c.id = s."companyId"
    WHERE sps.stage = 'AI_ANALYSIS' AND sps.status = 'PENDING' AND c.status = 'ACTIVE' ${inRegion}
    UNION ALL
    SELECT 'batch-processing', count(*), min(r."requestedAt")
    FROM "AIProcessingRequest" r JOIN "Company" c ON c.id = r."companyId"
    WHERE r."processingStatus" = 'PENDING_BATCHING' AND c.status = 'ACTIVE' ${inRegion}
    UNION ALL
    SELECT 'batch-status', count(*), min(b."createdAt")
    FROM "AIBatchRequest" b JOIN "Company" c ON c.id = b."companyId"
    WHERE b.status IN ('PENDING', 'UPLOADING', 'VALIDATING', 'IN_PROGRESS', 'FINALIZING', 'COMPLETED')
      ${inRegion}`;
  const backlog = Object.fromEntries(
    BACKLOG_STAGES.map((stage) => [stage, { waiting: 0, oldestAgeSeconds: 0 }]),
  ) as Backlog;
  for (const row of rows) {
    const waiting = Number(row.waiting);
    backlog[row.stage] = {
      waiting,
      oldestAgeSeconds:
        waiting > 0 && row.oldest
          ? Math.max(0, Math.round((now.getTime() - row.oldest.getTime()) / 1000))
          : 0,
    };
  }
  return backlog;
}

function csvScheduleId(region: string | undefined): string {
  return region ? `livedash-csv-import-${region}` : "livedash-csv-import";
}

/** The stage a scheduler id (`csv-import`, `batch-status@eu`, ...) drains. */
export function backlogStageOf(schedulerId: string): BacklogStage | undefined {
  const base = schedulerId.split("@")[0];
  return (BACKLOG_STAGES as readonly string[]).includes(base ?? "")
    ? (base as BacklogStage)
    : undefined;
}

/** Reads a region's backlog, shared by every caller within `cacheMs`. */
export type BacklogReader = (region: string | undefined) => Promise<Backlog>;

/**
 * Health checks and scrapes arrive often and from every replica; the backlog changes slowly.
 * One read per region per window serves them all; a failed read is not kept.
 */
export function createBacklogReader(db: Database, cacheMs = 10_000): BacklogReader {
  const cache = new Map<string, { at: number; value: Promise<Backlog> }>();
  return (region) => {
    const key = region ?? "";
    const hit = cache.get(key);
    if (hit && Date.now() - hit.at <= cacheMs) return hit.value;
    const value = readBacklog(db, region);
    value.catch(() => cache.delete(key));
    cache.set(key, { at: Date.now(), value });
    return value;
  };
}

export interface BacklogMetricsDeps {
  read: BacklogReader;
  /** Regions whose backlog is reported (undefined: the deployment without a region). */
  regions: (string | undefined)[];
  objectiveMs: number;
}

/**
 * `livedash_backlog_items`, `livedash_backlog_oldest_age_seconds` and
 * `livedash_backlog_lag_objective_seconds`, per stage and region: the signal an autoscaler
 * (KEDA's Prometheus scaler) and the lag alert use.
 */
export function registerBacklogMetrics(registry: Registry, deps: BacklogMetricsDeps): void {
  if (registry.getSingleMetric("livedash_backlog_items")) return; // one app per registry
  const read = () =>
    Promise.all(
      deps.regions.map(async (region) => [region ?? "", await deps.read(region)] as const),
    ).then((entries) => new Map(entries));
  const labelNames = ["stage", "region"] as const;
  const fill = async (gauge: Gauge<"stage" | "region">, pick: (s: StageBacklog) => number) => {
    gauge.reset();
    const backlogs = await read().catch(() => undefined);
    if (!backlogs) return; // No samples while the database is unreachable, rather than zeros.
    for (const [region, backlog] of backlogs) {
      for (const stage of BACKLOG_STAGES) gauge.set({ stage, region }, pick(backlog[stage]));
    }
  };
  new Gauge({
    name: "livedash_backlog_items",
    help: "Items waiting in PostgreSQL for a stage of the pipeline.",
    labelNames,
    registers: [registry],
    async collect() {
      await fill(this, (s) => s.waiting);
    },
  });
  new Gauge({
    name: "livedash_backlog_oldest_age_seconds",
    help: "How long the oldest waiting item of a stage has waited (0 when none waits).",
    labelNames,
    registers: [registry],
    async collect() {
      await fill(this, (s) => s.oldestAgeSeconds);
    },
  });
  new Gauge({
    name: "livedash_backlog_lag_objective_seconds",
    help: "BACKLOG_LAG_OBJECTIVE_SECONDS: a stage whose oldest item waits longer is ERROR.",
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const region of deps.regions) {
        for (const stage of BACKLOG_STAGES) {
          this.set({ stage, region: region ?? "" }, deps.objectiveMs / 1000);
        }
      }
    },
  });
}

/**
 * Adds a scheduler's backlog to its status; a RUNNING or STARTING scheduler whose oldest item
 * waits past the lag objective turns ERROR with the reason (a paused or stopped one keeps its
 * state: the operator chose it). A backlog that cannot be read leaves the status as it is.
 */
export async function withBacklog(
  status: SchedulerStatus,
  def: SchedulerDefinition,
  read: BacklogReader,
  objectiveMs: number,
): Promise<SchedulerStatus> {
  const stage = backlogStageOf(def.id);
  if (!stage) return status;
  const backlog = await read(def.companiesRegion).catch(() => undefined);
  if (!backlog) return status;
  const view = { ...backlog[stage], lagObjectiveSeconds: Math.round(objectiveMs / 1000) };
  return withBacklogRule({ ...status, backlog: view }, backlog[stage], objectiveMs);
}
