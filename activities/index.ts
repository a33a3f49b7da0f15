import { createHostLimiter } from "../adapters/host-slots.ts";
import { activityContextLogger } from "./activity-log.ts";
import { createBatchProcessingActivities } from "./batch-processing.ts";
import { recordingImportOutcomes } from "./company-import-health.ts";
import { createCsvImportActivities } from "./csv-import.ts";
import type { ActivityDeps } from "./deps.ts";
import { createHistoryRetentionActivities } from "./history-retention.ts";
import { createImportClaimActivities } from "./import-claims.ts";
import { createImportProcessingActivities } from "./import-processing.ts";
import { createRunRecordActivities } from "./run-records.ts";
import { createSessionProcessingActivities } from "./session-processing.ts";

export type { ActivityDeps } from "./deps.ts";

/**
 * Every activity of the pipeline, bound to its dependencies. Their log lines carry the running
 * activity's workflow id, run id, type and attempt (activity-log.ts).
 */
export function createActivities(given: ActivityDeps) {
  const deps: ActivityDeps = {
    ...given,
    log: activityContextLogger(given.log),
    hostLimiter:
      given.hostLimiter ??
      createHostLimiter({
        db: given.db,
        maxPerHost: given.config.fetchMaxPerHost,
        waitMs: given.config.fetchHostWaitMs,
      }),
  };
  return {
    ...createRunRecordActivities(deps),
    ...withImportHealth(deps, createCsvImportActivities(deps)),
    ...createImportProcessingActivities(deps),
    ...createImportClaimActivities(deps),
    ...createSessionProcessingActivities(deps),
    ...createBatchProcessingActivities(deps),
    ...createHistoryRetentionActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;

/** The CSV import activities, each company's final outcome recorded for its import health. */
function withImportHealth(
  deps: ActivityDeps,
  csvImport: ReturnType<typeof createCsvImportActivities>,
) {
  return {
    ...csvImport,
    importCompanyCsv: recordingImportOutcomes(deps, csvImport.importCompanyCsv),
  };
}
