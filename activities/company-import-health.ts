import { ApplicationFailure, Context } from "@temporalio/activity";
import { recordCompanyImportOutcome } from "../adapters/db/company-import-health.ts";
import type { CompanyImportResult } from "./csv-import.ts";
import type { ActivityDeps } from "./deps.ts";

type ImportCompanyCsv = (companyId: string) => Promise<CompanyImportResult>;

/**
 * Wraps the per-company CSV import so each company's final outcome of a run lands in
 * CompanyImportHealth: a success at once, a failure only when Temporal will not retry it
 * (non-retryable, or the last attempt of the retry policy). A retried attempt that later succeeds
 * therefore never counts as a failure. A worker that dies during the last attempt records
 * nothing for that company in that run (the run record still has it).
 */
export function recordingImportOutcomes(
  { db, log }: Pick<ActivityDeps, "db" | "log">,
  importCompanyCsv: ImportCompanyCsv,
): ImportCompanyCsv {
  const record = async (companyId: string, ok: boolean, error?: string) => {
    const info = Context.current().info;
    await recordCompanyImportOutcome(db, {
      companyId,
      runId: info.workflowExecution?.workflowId ?? `activity-${info.activityId}`,
      at: new Date(),
      ok,
      error,
    }).catch((cause: unknown) =>
      // Health bookkeeping must never fail (and so repeat) an import.
      log.warn({ companyId, err: cause }, "could not record the company's import health"),
    );
  };
  return async (companyId) => {
    let result: CompanyImportResult;
    try {
      result = await importCompanyCsv(companyId);
    } catch (error) {
      if (isFinalAttempt(error)) {
        await record(companyId, false, error instanceof Error ? error.message : String(error));
      }
      throw error;
    }
    if (result.status === "imported") await record(companyId, true);
    return result;
  };
}

function isFinalAttempt(error: unknown): boolean {
  const { attempt, retryPolicy } = Context.current().info;
  if (error instanceof ApplicationFailure) {
    if (error.nonRetryable) return true;
    if (error.type && retryPolicy?.nonRetryableErrorTypes?.includes(error.type)) return true;
  }
  const maxAttempts = retryPolicy?.maximumAttempts ?? 0;
  return maxAttempts > 0 && attempt >= maxAttempts;
}
