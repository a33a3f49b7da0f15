import { Context } from "@temporalio/activity";
import { recordCompanyImportOutcome } from "../adapters/db/company-import-health.ts";
import type { CompanyImportResult } from "./csv-import.ts";
import type { ActivityDeps } from "./deps.ts";

type ImportCompanyCsv = (companyId: string) => Promise<CompanyImportResult>;

/**
 * Each company's outcome of a run in CompanyImportHealth, once per (company, run). A success is
 * recorded by the import itself as it ends (a success is final whatever the retry policy). A
 * failure is the workflow's to call final: once its retry policy is exhausted (or the failure is
 * one no retry can help), it records it through recordCompanyImportFailure. So a retried attempt
 * that later succeeds never counts as a failure, and a company whose worker died on every
 * attempt is recorded as failed too.
 */
export function recordingImportSuccess(
  { db, log }: Pick<ActivityDeps, "db" | "log">,
  importCompanyCsv: ImportCompanyCsv,
): ImportCompanyCsv {
  return async (companyId) => {
    const result = await importCompanyCsv(companyId);
    if (result.status === "imported") {
      const info = Context.current().info;
      await recordCompanyImportOutcome(db, {
        companyId,
        runId: info.workflowExecution?.workflowId ?? `activity-${info.activityId}`,
        at: new Date(),
        ok: true,
      }).catch((cause: unknown) =>
        // Health bookkeeping must never fail (and so repeat) an import.
        log.warn({ companyId, err: cause }, "could not record the company's import health"),
      );
    }
    return result;
  };
}

export interface CompanyImportFailure {
  companyId: string;
  /** The run (workflow id) whose final outcome for the company this is. */
  runId: string;
  error: string;
}

export function createCompanyImportHealthActivities({ db }: Pick<ActivityDeps, "db">) {
  /**
   * The workflow's record of a company whose import failed for good in a run. Idempotent per
   * (company, run): a repeat of it, or of the run's record, changes nothing.
   */
  async function recordCompanyImportFailure(failure: CompanyImportFailure): Promise<void> {
    await recordCompanyImportOutcome(db, {
      companyId: failure.companyId,
      runId: failure.runId,
      at: new Date(),
      ok: false,
      error: failure.error,
    });
  }
  return { recordCompanyImportFailure };
}
