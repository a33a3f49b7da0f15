import type { Database } from "../adapters/db/client.ts";
import { Prisma } from "../adapters/db/generated/prisma/client.ts";

/**
 * Reads behind the schedule-lateness metrics, shared by /metrics and the admin API. Lateness is
 * how long after its nominal (scheduled) time a run started: start minus scheduled time, from
 * the run table's scheduledAt (Temporal's TemporalScheduledStartTime) and startedAt.
 */

/** Upper bounds (seconds) of the run lateness histogram. */
export const RUN_LATENESS_BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600] as const;

export interface LatenessTotals {
  /** Cumulative counts per RUN_LATENESS_BUCKETS bound. */
  buckets: number[];
  runs: number;
  sumSeconds: number;
  /** Lateness of the latest scheduled run, in seconds. */
  lastSeconds: number | undefined;
}

interface LatenessRow {
  scheduleId: string;
  runs: number;
  sumSeconds: number;
  buckets: number[];
}

const LATENESS = Prisma.sql`greatest(0, extract(epoch FROM ("startedAt" - "scheduledAt")))`;

/** Lateness histogram and latest lateness per schedule: two aggregate queries. */
export async function readLateness(
  db: Database,
  scheduleIds: string[],
): Promise<Map<string, LatenessTotals>> {
  const bucketCounts = Prisma.join(
    RUN_LATENESS_BUCKETS.map(
      (bound) => Prisma.sql`count(*) FILTER (WHERE ${LATENESS} <= ${bound})`,
    ),
  );
  const [rows, latest] = await Promise.all([
    db.$queryRaw<LatenessRow[]>`
      SELECT "scheduleId",
             count(*)::float8 AS runs,
             coalesce(sum(${LATENESS}), 0)::float8 AS "sumSeconds",
             ARRAY[${bucketCounts}]::float8[] AS buckets
      FROM "SchedulerRun"
      WHERE "scheduleId" = ANY(${scheduleIds}::text[]) AND "scheduledAt" IS NOT NULL
      GROUP BY "scheduleId"`,
    db.$queryRaw<{ scheduleId: string; seconds: number }[]>`
      SELECT DISTINCT ON ("scheduleId") "scheduleId", ${LATENESS}::float8 AS seconds
      FROM "SchedulerRun"
      WHERE "scheduleId" = ANY(${scheduleIds}::text[]) AND "scheduledAt" IS NOT NULL
      ORDER BY "scheduleId", "startedAt" DESC`,
  ]);
  const totals = new Map<string, LatenessTotals>();
  for (const row of rows) {
    totals.set(row.scheduleId, {
      buckets: row.buckets,
      runs: row.runs,
      sumSeconds: row.sumSeconds,
      lastSeconds: latest.find((l) => l.scheduleId === row.scheduleId)?.seconds,
    });
  }
  return totals;
}

export function emptyLateness(): LatenessTotals {
  return {
    buckets: RUN_LATENESS_BUCKETS.map(() => 0),
    runs: 0,
    sumSeconds: 0,
    lastSeconds: undefined,
  };
}

export interface LatenessSummary {
  lastLatenessMs: number | null;
  avgLatenessMs: number | null;
  p95LatenessMs: number | null;
}

/** Lateness over a schedule's most recent scheduled runs, for the admin API. */
export async function latenessSummary(
  db: Database,
  scheduleId: string,
  window: number,
): Promise<LatenessSummary> {
  const [row] = await db.$queryRaw<
    { last: number | null; avg: number | null; p95: number | null }[]
  >`
    WITH recent AS (
      SELECT ${LATENESS} * 1000 AS ms, "startedAt" FROM "SchedulerRun"
      WHERE "scheduleId" = ${scheduleId} AND "scheduledAt" IS NOT NULL
      ORDER BY "startedAt" DESC LIMIT ${window}
    )
    SELECT (SELECT ms FROM recent ORDER BY "startedAt" DESC LIMIT 1)::float8 AS last,
           avg(ms)::float8 AS avg,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::float8 AS p95
    FROM recent`;
  const ms = (value: number | null | undefined) =>
    value === null || value === undefined ? null : Math.round(value);
  return {
    lastLatenessMs: ms(row?.last),
    avgLatenessMs: ms(row?.avg),
    p95LatenessMs: ms(row?.p95),
  };
}
