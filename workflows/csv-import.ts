import {
  ActivityFailure,
  ApplicationFailure,
  continueAsNew,
  isCancellation,
  patched,
  proxyActivities,
  workflowInfo,
} from "@temporalio/workflow";
import type { CompanyImportResult, CompanyRef, CsvImportCounts } from "../activities/csv-import.ts";
import type { Activities } from "../activities/index.ts";
import { CSV_SOURCE_REJECTED, SOURCE_HOST_BUSY } from "../domain/failure-types.ts";
import { drain, type ItemResult } from "./drain.ts";
import { doublingBackoff } from "./retry-backoff.ts";
import { deferralFor, type RunLimits, runDeadline } from "./run-limits.ts";
import {
  afterDrain,
  type Continuation,
  describeError,
  historyNearlyFull,
  type RunSummary,
  recordedRun,
  summaryWith,
} from "./run-record.ts";

export interface CsvImportWorkflowInput extends RunLimits {
  schedulerId: string;
  scheduleId: string;
  /** Companies listed per page (CSV_IMPORT_BATCH_SIZE). */
  batchSize: number;
  /** Runs started before the drain model bounded their fetches with this; ignored now. */
  maxConcurrent?: number | undefined;
  /** Time budget of one company's fetch attempt (CSV_IMPORT_TIMEOUT). */
  fetchTimeoutMs: number;
  /** A fetch silent this long is retried elsewhere (its worker presumably died). */
  heartbeatTimeoutMs: number;
  /** Wait before a failed fetch's second attempt (CSV_IMPORT_RETRY_INTERVAL_MS; absent: 5 s). */
  retryIntervalMs?: number | undefined;
  /** Only companies of this region (CSV_COMPANIES_FILTER=region:<name>). */
  region?: string | undefined;
  /** Set by the run itself when it continues as new. */
  continuation?: Continuation<CsvImportState> | undefined;
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
  /** Every company while the run is small; past that, failed companies only (bounded). */
  perCompany: CompanyImportResult[];
}

/** What one execution hands the next: where the company listing stands and the totals. */
export interface CsvImportState {
  afterId?: string | undefined;
  counts: CsvImportRunCounts;
  /** Companies listed but not finished (deferred) when the execution handed over. */
  carried: CompanyRef[];
  /** ACTIVE companies when the run started (its progress total); absent in older runs. */
  total?: number | undefined;
  /** The listing reached its end (absent in older runs: unknown). */
  listedAll?: boolean | undefined;
}

/** Marks runs that count their companies first (the progress total). */
const PROGRESS_TOTAL_PATCH = "csv-import-progress-total";

/**
 * Marks runs that record a company's final import failure themselves (recordCompanyImportFailure)
 * once the retry policy is exhausted; before it, the import activity did on its last attempt. A
 * failure already in the history when this code replays it was recorded that way.
 */
const RECORD_IMPORT_FAILURE_PATCH = "csv-import-records-final-failure";

/** Companies reported one by one in the run summary (with rejection samples below the first). */
const DETAILED_COMPANIES_LIMIT = 200;

const { listCsvImportCompanies, countCsvImportCompanies, recordCompanyImportFailure } =
  proxyActivities<Activities>({
    startToCloseTimeout: "1m",
    retry: { initialInterval: "1s", maximumInterval: "30s", maximumAttempts: 5 },
  });

/** A company's import failed for good in this run: its import health says so, once per run. */
async function recordFinalFailure(companyId: string, error: unknown): Promise<void> {
  if (isCancellation(error) || !patched(RECORD_IMPORT_FAILURE_PATCH)) return;
  try {
    await recordCompanyImportFailure({
      companyId,
      runId: workflowInfo().workflowId,
      error: describeError(error),
    });
  } catch (cause) {
    // Health bookkeeping never fails the run; the run record still names the company.
    if (isCancellation(cause)) throw cause;
  }
}

function fetchActivities(input: CsvImportWorkflowInput) {
  return proxyActivities<Activities>({
    startToCloseTimeout: input.fetchTimeoutMs,
    heartbeatTimeout: input.heartbeatTimeoutMs,
    retry: {
      ...doublingBackoff(input.retryIntervalMs, 5_000, 60_000),
      maximumAttempts: 3,
      nonRetryableErrorTypes: [CSV_SOURCE_REJECTED, SOURCE_HOST_BUSY],
    },
  });
}

/**
 * Imports every ACTIVE company's CSV. Drains: companies are fetched through a sliding window
 * until all were visited or the run deadline passed; one company's failure never fails the
 * others, and a slow source holds one slot, never the run. Continues as new before its history
 * grows large, so any number of companies fits.
 */
export async function csvImportWorkflow(
  input: CsvImportWorkflowInput,
): Promise<RunSummary<CsvImportRunCounts>> {
  return recordedRun(
    input,
    input.continuation,
    async (run, previous, tracker) => {
      const { importCompanyCsv } = fetchActivities(input);
      const state: CsvImportState = previous ?? { counts: emptyRunCounts(), carried: [] };
      // The run's progress total: one count at the start of the run (runs started before this
      // existed replay without it).
      if (!previous && patched(PROGRESS_TOTAL_PATCH)) {
        state.total = await countCsvImportCompanies({ region: input.region });
      }
      let listedAll = false;
      tracker.counts = state.counts;
      tracker.total = state.total ?? null;
      tracker.listedAll = state.listedAll ?? false;
      const inFlight = new Set<string>();
      tracker.inFlightKeys = inFlight;

      const drained = await drain<CompanyRef>({
        carried: state.carried,
        tracker,
        window: input.window,
        deadline: runDeadline(run, input),
        shouldContinue: () => historyNearlyFull(input),
        nextPage: async () => {
          if (listedAll) return [];
          const page = await listCsvImportCompanies({
            region: input.region,
            afterId: state.afterId,
            limit: input.batchSize,
          });
          if (page.length < input.batchSize) listedAll = true;
          state.afterId = page.at(-1)?.id ?? state.afterId;
          // Companies created during the run may be listed too: the total never trails.
          const listed = tracker.taken + page.length;
          if (listedAll) tracker.total = listed;
          else if (state.total !== undefined) tracker.total = Math.max(state.total, listed);
          if (listedAll) state.listedAll = true;
          tracker.listedAll = state.listedAll ?? false;
          return page;
        },
        work: async (company): Promise<ItemResult> => {
          const started = Date.now();
          inFlight.add(company.id);
          try {
            addResult(state.counts, await importCompanyCsv(company.id));
          } catch (error) {
            const deferral = deferralFor(error);
            if (deferral) return deferral;
            const failed = failedCompany(company, error, Date.now() - started);
            // The retry policy is exhausted (or no retry can help): this failure is final.
            await recordFinalFailure(company.id, error);
            addResult(state.counts, failed);
          } finally {
            inFlight.delete(company.id);
          }
          return "done";
        },
      });

      return afterDrain(drained, state, state.counts, () => {
        const counts = state.counts;
        const problems = [
          ...counts.perCompany
            .filter((r) => r.status === "failed")
            .map((r) => `${r.companyName}: ${r.error}`),
          ...(drained.leftover.length > 0
            ? [
                `${drained.leftover.length} company(ies) waited for a busy source host past the deadline`,
              ]
            : []),
          ...(drained.end === "deadline" && !listedAll
            ? ["run deadline reached before every company was visited; the next run goes on"]
            : []),
        ];
        const outcome =
          counts.companies > 0 && counts.failed === counts.companies
            ? "FAILED"
            : problems.length > 0
              ? "PARTIAL"
              : "SUCCEEDED";
        // Every problem in the error (bounded), not only the first five.
        return summaryWith(outcome, counts, problems.length > 0 ? [problems.join("; ")] : []);
      });
    },
    (next) => continueAsNew<typeof csvImportWorkflow>({ ...input, continuation: next }),
  );
}

function emptyRunCounts(): CsvImportRunCounts {
  return {
    companies: 0,
    imported: 0,
    failed: 0,
    skipped: 0,
    rowsRead: 0,
    inserted: 0,
    duplicates: 0,
    rejected: 0,
    perCompany: [],
  };
}

/** Folds one company's result into the run totals, keeping the per-company list bounded. */
function addResult(counts: CsvImportRunCounts, result: CompanyImportResult): void {
  counts.companies += 1;
  if (result.status === "imported") counts.imported += 1;
  else if (result.status === "failed") counts.failed += 1;
  else counts.skipped += 1;
  counts.rowsRead += result.rowsRead;
  counts.inserted += result.inserted;
  counts.duplicates += result.duplicates;
  counts.rejected += result.rejected;
  if (counts.perCompany.length < DETAILED_COMPANIES_LIMIT) counts.perCompany.push(result);
  else if (result.status === "failed" && counts.perCompany.length < 2 * DETAILED_COMPANIES_LIMIT) {
    counts.perCompany.push({ ...result, rejections: [] });
  }
}

function failedCompany(
  company: CompanyRef,
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
    companyId: company.id,
    companyName: company.name,
    status: "failed",
    error: describeError(error),
    durationMs,
    ...counts,
  };
}
