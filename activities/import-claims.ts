import { Prisma } from "../adapters/db/generated/prisma/client.ts";
import type { ActivityDeps } from "./deps.ts";
import type { ImportRef } from "./import-processing.ts";

export interface ClaimPendingImportsInput {
  region?: string | undefined;
  /** Imports claimed at most (IMPORT_PROCESSING_BATCH_SIZE). */
  limit: number;
  /** Companies visited so far in this lap: the claim goes on after this company id. */
  companyCursor?: string | undefined;
  /** How long the claimed imports stay reserved for this run. */
  leaseMs: number;
  /**
   * This claim's key: the run's workflow id and the claim's number in the run. A retried claim
   * (its first attempt committed, then its worker died) gets back the same imports.
   */
  holder: string;
}

export interface ClaimedImports {
  imports: ImportRef[];
  /** Where the next claim goes on; absent when the lap is over (the next claim starts again). */
  companyCursor?: string | undefined;
}

/**
 * Claims pending imports fairly: companies with pending imports are visited in turn (id order,
 * wrapping around), so one company with a huge backlog cannot starve the others. A claim is a
 * lease on the rows: no other run lists them until it expires or they are processed, so two
 * runs (or a run and its retry) never take the same import.
 */
export function createImportClaimActivities({ db }: ActivityDeps) {
  async function claimPendingImports(input: ClaimPendingImportsInput): Promise<ClaimedImports> {
    const earlier = await db.$queryRaw<ClaimRow[]>`
      SELECT id, "companyId", "createdAt" FROM "SessionImport"
      WHERE "leaseHolder" = ${input.holder} AND status = 'PENDING'`;
    if (earlier.length > 0) {
      return claimed({ rows: earlier, lastVisited: undefined, lapOver: false }, input.limit);
    }
    let cursor = input.companyCursor;
    let wrapped = cursor === undefined;
    // Companies whose pending imports are all leased yield nothing: go on past them, once round.
    for (let scans = 0; scans < MAX_SCANS_PER_CLAIM; scans++) {
      const scan = await claimFrom(input, cursor);
      if (scan.rows.length > 0) return claimed(scan, input.limit);
      if (scan.lapOver) {
        if (wrapped) return { imports: [] };
        wrapped = true;
        cursor = undefined;
        continue;
      }
      cursor = scan.lastVisited;
      if (wrapped && input.companyCursor && cursor && cursor >= input.companyCursor) break;
    }
    return { imports: [] };
  }

  function claimed(scan: Scan, limit: number): ClaimedImports {
    const { rows } = scan;
    const imports = rows
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.id.localeCompare(b.id))
      .map((r) => ({ id: r.id, createdAt: r.createdAt.toISOString() }));
    // A full page ends with the last company it took from; otherwise every visited company gave
    // what it had, and the next claim goes on after the last one visited (or starts a new lap).
    if (rows.length >= limit) {
      const last = rows
        .map((r) => r.companyId)
        .sort()
        .at(-1);
      return { imports, companyCursor: last };
    }
    return scan.lapOver ? { imports } : { imports, companyCursor: scan.lastVisited };
  }

  /**
   * A skip scan over the companies with PENDING imports (one index probe each, however many
   * imports they hold), then each company's oldest unleased imports, then the lease. The UPDATE
   * re-checks the lease, so of two concurrent claims only one gets a row.
   */
  async function claimFrom(input: ClaimPendingImportsInput, cursor?: string): Promise<Scan> {
    const after = cursor ?? "00000000-0000-0000-0000-000000000000";
    const maxCompanies = input.limit * 2;
    const rows = await db.$queryRaw<(ClaimRow & { lastVisited: string | null; visited: number })[]>`
      WITH RECURSIVE companies AS (
        (SELECT si."companyId" AS id, 1 AS n FROM "SessionImport" si
          WHERE si.status = 'PENDING' AND si."companyId" > ${after}::uuid
          ORDER BY si."companyId" LIMIT 1)
        UNION ALL
        SELECT (SELECT si."companyId" FROM "SessionImport" si
                 WHERE si.status = 'PENDING' AND si."companyId" > c.id
                 ORDER BY si."companyId" LIMIT 1), c.n + 1
        FROM companies c WHERE c.id IS NOT NULL AND c.n < ${maxCompanies}
      ),
      candidates AS (
        SELECT x.id FROM companies c
        JOIN "Company" co ON co.id = c.id AND co.status = 'ACTIVE'
          ${input.region ? Prisma.sql`AND co.region = ${input.region}` : Prisma.empty}
        CROSS JOIN LATERAL (
          SELECT si.id, si."createdAt" FROM "SessionImport" si
          WHERE si."companyId" = c.id AND si.status = 'PENDING'
            AND (si."leaseUntil" IS NULL OR si."leaseUntil" < now())
          ORDER BY si."createdAt", si.id LIMIT ${input.limit}
        ) x
        ORDER BY c.n, x."createdAt", x.id
        LIMIT ${input.limit}
      ),
      claimed AS (
        UPDATE "SessionImport" si
        SET "leaseUntil" = now() + ${input.leaseMs} * interval '1 millisecond',
            "leaseHolder" = ${input.holder}
        FROM candidates
        WHERE si.id = candidates.id AND si.status = 'PENDING'
          AND (si."leaseUntil" IS NULL OR si."leaseUntil" < now())
        RETURNING si.id, si."companyId", si."createdAt"
      ),
      scan AS (
        SELECT (SELECT id FROM companies WHERE id IS NOT NULL ORDER BY n DESC LIMIT 1) AS "lastVisited",
               (SELECT count(*) FROM companies WHERE id IS NOT NULL)::int AS visited
      )
      SELECT claimed.id, claimed."companyId", claimed."createdAt", scan."lastVisited", scan.visited
      FROM scan LEFT JOIN claimed ON true`;
    const scan = rows[0];
    return {
      rows: rows.filter((r) => r.id !== null),
      lastVisited: scan?.lastVisited ?? undefined,
      lapOver: (scan?.visited ?? 0) < maxCompanies,
    };
  }

  /**
   * Gives back the imports a run claimed but left pending (a transcript to retry later, an
   * import whose retries ran out), so the next run takes them at once instead of after the
   * lease; the leases of a run that died simply expire.
   */
  async function releaseImportLeases(input: { holder: string }): Promise<number> {
    // Every claim of the run: their keys are `<workflow id>#<n>`.
    return db.$executeRaw`
      UPDATE "SessionImport" SET "leaseUntil" = NULL, "leaseHolder" = NULL
      WHERE starts_with("leaseHolder", ${`${input.holder}#`}) AND status = 'PENDING'`;
  }

  return { claimPendingImports, releaseImportLeases };
}

/** Scans one claim may make while every company it visits has only leased imports. */
const MAX_SCANS_PER_CLAIM = 20;

interface Scan {
  rows: ClaimRow[];
  lastVisited: string | undefined;
  /** The scan ran out of companies: the next claim starts a new lap. */
  lapOver: boolean;
}

interface ClaimRow {
  id: string;
  companyId: string;
  createdAt: Date;
}
