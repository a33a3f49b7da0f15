import type { Database } from "./client.ts";
import { Prisma } from "./generated/prisma/client.ts";
import type { CompanyStatus } from "./generated/prisma/enums.ts";

/**
 * Per-company CSV import health: one row per company (CompanyImportHealth), written once per
 * run and company with that company's final outcome, so reading it costs the same for 10 or
 * 100,000 companies. Metrics only ever see bounded aggregates of it.
 */

export interface CompanyImportOutcome {
  companyId: string;
  /** The run (workflow id) the outcome belongs to: a repeated write of one run counts once. */
  runId: string;
  at: Date;
  ok: boolean;
  error?: string | undefined;
}

/** Thresholds of `livedash_companies_failing{min_consecutive_failures}`. */
export const FAILING_THRESHOLDS = [1, 3, 10] as const;

const MAX_ERROR_LENGTH = 1000;

/**
 * Records one company's final outcome of one run. Idempotent per (company, run): the row only
 * changes for a run it has not seen yet, and never goes back in time. A company deleted in the
 * meantime is skipped.
 */
export async function recordCompanyImportOutcome(
  db: Database,
  outcome: CompanyImportOutcome,
): Promise<void> {
  const error = outcome.ok ? null : (outcome.error ?? "failed").slice(0, MAX_ERROR_LENGTH);
  await db.$executeRaw`
    INSERT INTO "CompanyImportHealth" AS h
      ("companyId", "lastRunId", "lastAttemptAt", "lastSuccessAt", "lastFailureAt",
       "consecutiveFailures", "lastError", "updatedAt")
    SELECT c.id, ${outcome.runId}, ${outcome.at},
           ${outcome.ok ? outcome.at : null}::timestamp(3),
           ${outcome.ok ? null : outcome.at}::timestamp(3),
           ${outcome.ok ? 0 : 1}, ${error}, now()
    FROM "Company" c WHERE c.id = ${outcome.companyId}::uuid
    ON CONFLICT ("companyId") DO UPDATE SET
      "lastRunId" = EXCLUDED."lastRunId",
      "lastAttemptAt" = EXCLUDED."lastAttemptAt",
      "lastSuccessAt" = coalesce(EXCLUDED."lastSuccessAt", h."lastSuccessAt"),
      "lastFailureAt" = coalesce(EXCLUDED."lastFailureAt", h."lastFailureAt"),
      "consecutiveFailures" =
        CASE WHEN ${outcome.ok} THEN 0 ELSE h."consecutiveFailures" + 1 END,
      "lastError" = coalesce(EXCLUDED."lastError", h."lastError"),
      "updatedAt" = now()
    WHERE h."lastRunId" <> EXCLUDED."lastRunId"
      AND h."lastAttemptAt" <= EXCLUDED."lastAttemptAt"`;
}

export interface CompanyHealthView {
  companyId: string;
  name: string;
  status: CompanyStatus;
  region: string | null;
  lastAttemptAt: string | null;
  lastSuccessAt: string | null;
  lastFailureAt: string | null;
  consecutiveFailures: number;
  lastError: string | null;
}

export interface CompanyHealthQuery {
  /** Only companies whose last `minFailures` (default 1) imports failed. */
  failing?: boolean | undefined;
  minFailures?: number | undefined;
  region?: string | undefined;
  status?: CompanyStatus | undefined;
  limit: number;
  /** Keyset cursor: the last company id of the previous page. */
  after?: string | undefined;
}

/** A page of companies with their import health, by company id. */
export async function companyHealthPage(
  db: Database,
  query: CompanyHealthQuery,
): Promise<{ companies: CompanyHealthView[]; nextCursor: string | null }> {
  const minFailures = query.failing ? Math.max(1, query.minFailures ?? 1) : undefined;
  const rows = await db.company.findMany({
    where: {
      ...(query.region ? { region: query.region } : {}),
      ...(query.status ? { status: query.status } : {}),
      ...(query.after ? { id: { gt: query.after } } : {}),
      ...(minFailures ? { importHealth: { consecutiveFailures: { gte: minFailures } } } : {}),
    },
    orderBy: { id: "asc" },
    take: query.limit + 1,
    select: { id: true, name: true, status: true, region: true, importHealth: true },
  });
  const page = rows.slice(0, query.limit);
  return {
    companies: page.map((row) => ({
      companyId: row.id,
      name: row.name,
      status: row.status,
      region: row.region,
      lastAttemptAt: row.importHealth?.lastAttemptAt.toISOString() ?? null,
      lastSuccessAt: row.importHealth?.lastSuccessAt?.toISOString() ?? null,
      lastFailureAt: row.importHealth?.lastFailureAt?.toISOString() ?? null,
      consecutiveFailures: row.importHealth?.consecutiveFailures ?? 0,
      lastError: row.importHealth?.lastError ?? null,
    })),
    nextCursor: rows.length > query.limit ? (page.at(-1)?.id ?? null) : null,
  };
}

export interface FailingCount {
  region: string;
  minConsecutiveFailures: number;
  companies: number;
}

/**
 * ACTIVE companies failing for at least each threshold, by region ("" for none): one indexed
 * aggregate, a handful of numbers whatever the number of companies.
 */
export async function failingCompanyCounts(db: Database): Promise<FailingCount[]> {
  const columns = Prisma.join(
    FAILING_THRESHOLDS.map(
      (n) => Prisma.sql`count(*) FILTER (WHERE h."consecutiveFailures" >= ${n})::float8`,
    ),
  );
  const rows = await db.$queryRaw<{ region: string; counts: number[] }[]>`
    SELECT coalesce(c.region, '') AS region, ARRAY[${columns}]::float8[] AS counts
    FROM "CompanyImportHealth" h JOIN "Company" c ON c.id = h."companyId"
    WHERE c.status = 'ACTIVE' AND h."consecutiveFailures" > 0
    GROUP BY 1`;
  return rows.flatMap((row) =>
    FAILING_THRESHOLDS.map((n, i) => ({
      region: row.region,
      minConsecutiveFailures: n,
      companies: row.counts[i] ?? 0,
    })),
  );
}
