import { ActivityFailure, ApplicationFailure, proxyActivities } from "@temporalio/workflow";
import type { CompanyImportResult, CsvImportCounts } from "../activities/csv-import.ts";
import type { Activities } from "../activities/index.ts";
import { runPool } from "./pool.ts";
import { describeError, type RunSummary, recordedRun } from "./run-record.ts";

export interface CsvImportWorkflowInput {
  schedulerId: string;
  scheduleId: string;
  /** Companies listed per page (CSV_IMPORT_BATCH_SIZE). */
  batchSize: number;
  /** Fetch activities in flight at once (CSV_IMPORT_MAX_CONCURRENT). */
  maxConcurrent: number;
  /** Time budget of one company's fetch attempt (CSV_IMPORT_TIMEOUT). */
  fetchTimeoutMs: number;
  /** A fetch silent this long is retried elsewhere (its worker presumably died). */
  heartbeatTimeoutMs: number;
  /** Only companies of this region (CSV_COMPANIES_FILTER=region:<name>). */
  region?: string | undefined;
}

export interface CsvImportRunCounts {
  companies: number;
  imported: number;
  failed: number;
  skipped: number;
  rowsRead: number;
  inserted: number;
  duplicates: number;
  rejected: number;
  perCompany: CompanyImportResult[];
}

/** Per-company rejection samples are dropped from the run summary past this many companies. */
const DETAILED_COMPANIES_LIMIT = 200;

const { listCsvImportCompanies } = proxyActivities<Activities>({
  startToCloseTimeout: "1m",
  retry: { initialInterval: "1s", maximumInterval: "30s", maximumAttempts: 5 },
});

function fetchActivities(timeoutMs: number, heartbeatTimeoutMs: number) {
  return proxyActivities<Activities>({
    startToCloseTimeout: timeoutMs,
    heartbeatTimeout: heartbeatTimeoutMs,
    retry: {
      initialInterval: "5s",
      backoffCoefficient: 2,
      maximumInterval: "1m",
      maximumAttempts: 3,
      nonRetryableErrorTypes: ["CsvSourceRejected"],
    },
  });
}

/** Imports every ACTIVE company's CSV; one company's failure never fails the others. */
export async function csvImportWorkflow(
  input: CsvImportWorkflowInput,
): Promise<RunSummary<CsvImportRunCounts>> {
  return recordedRun(input.schedulerId, input.scheduleId, async () => {
    const { importCompanyCsv } = fetchActivities(input.fetchTimeoutMs, input.heartbeatTimeoutMs);
    const results: CompanyImportResult[] = [];
    let afterId: string | undefined;

    for (;;) {
      const page = await listCsvImportCompanies({
        region: input.region,
        afterId,
        limit: input.batchSize,
      });
      if (page.length === 0) break;
      afterId = page.at(-1)?.id;

      await runPool(page, input.maxConcurrent, async (company) => {
        const started = Date.now();
        try {
          results.push(await importCompanyCsv(company.id));
        } catch (error) {
          results.push(failedCompany(company.id, company.name, error, Date.now() - started));
        }
      });
      if (page.length < input.batchSize) break;
    }

    const counts = summarise(results);
    const failed = counts.failed;
    const outcome = failed === 0 ? "SUCCEEDED" : failed === counts.companies ? "FAILED" : "PARTIAL";
    const failures = results.filter((r) => r.status === "failed");
    return {
      outcome,
      counts,
      ...(failed > 0
        ? {
            error: failures
              .map((r) => `${r.companyName}: ${r.error}`)
              .join("; ")
              .slice(0, 2000),
          }
        : {}),
    };
  });
}

function failedCompany(
  companyId: string,
  companyName: string,
  error: unknown,
  durationMs: number,
): CompanyImportResult {
  // The activity attaches its counts so rows committed before the failure are still reported.
  const cause = error instanceof ActivityFailure ? error.cause : undefined;
  const details = cause instanceof ApplicationFailure ? cause.details?.[0] : undefined;
  const counts = (details as CsvImportCounts | undefined) ?? {
    rowsRead: 0,
    inserted: 0,
    duplicates: 0,
    rejected: 0,
    rejections: [],
  };
  return {
    companyId,
    companyName,
    status: "failed",
    error: describeError(error),
    durationMs,
    ...counts,
  };
}

function summarise(results: CompanyImportResult[]): CsvImportRunCounts {
  const detailed = results.length <= DETAILED_COMPANIES_LIMIT;
  const sum = (pick: (r: CompanyImportResult) => number) =>
    results.reduce((total, r) => total + pick(r), 0);
  return {
    companies: results.length,
    imported: results.filter((r) => r.status === "imported").length,
    failed: results.filter((r) => r.status === "failed").length,
    skipped: results.filter((r) => r.status === "skipped").length,
    rowsRead: sum((r) => r.rowsRead),
    inserted: sum((r) => r.inserted),
    duplicates: sum((r) => r.duplicates),
    rejected: sum((r) => r.rejected),
    perCompany: detailed ? results : results.map((r) => ({ ...r, rejections: [] })),
  };
}
