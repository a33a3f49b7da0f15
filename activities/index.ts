import { createHostLimiter } from "../adapters/host-slots.ts";
import type { WorkerType } from "../domain/scheduler-id.ts";
import { activityContextLogger } from "./activity-log.ts";
import { createBatchCreationActivities } from "./batch-creation.ts";
import { createBatchStatusActivities } from "./batch-status.ts";
import {
  createCompanyImportHealthActivities,
  recordingImportSuccess,
} from "./company-import-health.ts";
import { createCsvImportActivities } from "./csv-import.ts";
import type { ActivityDeps } from "./deps.ts";
import { createHistoryRetentionActivities } from "./history-retention.ts";
import { createImportClaimActivities } from "./import-claims.ts";
import { createImportProcessingActivities } from "./import-processing.ts";
import { createRunRecordActivities } from "./run-records.ts";
import { createSessionProcessingActivities } from "./session-processing.ts";

export type { ActivityDeps } from "./deps.ts";

/** A Temporal worker of the fleet: a scheduler type's own queue, or the direct-mode model calls. */
export type ActivityWorker = WorkerType | "analysis";

/**
 * The dependencies every activity of a process shares: log lines that carry the running
 * activity's workflow id, run id, type and attempt (activity-log.ts), and one host limiter.
 */
function activityDeps(given: ActivityDeps): ActivityDeps {
  return {
    ...given,
    log: activityContextLogger(given.log),
    hostLimiter:
      given.hostLimiter ??
      createHostLimiter({
        db: given.db,
        maxPerHost: given.config.fetchMaxPerHost,
        waitMs: given.config.fetchHostWaitMs,
        // A dead worker's slots come free when its activities are presumed dead, not later.
        leaseMs: given.config.scheduler.heartbeatTimeoutMs,
      }),
  };
}

/**
 * The CSV import activities: each company's successful import recorded for its import health as
 * it ends, a final failure by the workflow (recordCompanyImportFailure).
 */
function csvImportActivities(deps: ActivityDeps) {
  const csvImport = createCsvImportActivities(deps);
  return {
    ...csvImport,
    importCompanyCsv: recordingImportSuccess(deps, csvImport.importCompanyCsv),
    ...createCompanyImportHealthActivities(deps),
  };
}

/**
 * Per worker, the activities it registers: those its workflows schedule on its task queue (each
 * workflow's run records included), nothing of another stage. The analysis queue carries the
 * model calls only; the session-processing queue the database steps around them. Every worker
 * of a process shares one set of dependencies (one host limiter).
 */
export function createWorkerActivities(given: ActivityDeps) {
  const deps = activityDeps(given);
  return (worker: ActivityWorker) => activitiesFor(worker, deps);
}

function activitiesFor(worker: ActivityWorker, deps: ActivityDeps) {
  switch (worker) {
    case "csv-import":
      return { ...createRunRecordActivities(deps), ...csvImportActivities(deps) };
    case "import-processing":
      return {
        ...createRunRecordActivities(deps),
        ...createImportClaimActivities(deps),
        ...createImportProcessingActivities(deps),
      };
    case "session-processing": {
      const { requestAnalysis: _, ...own } = createSessionProcessingActivities(deps);
      // analyseRequestDirect: runs started before the analysis queue existed schedule it here.
      return { ...createRunRecordActivities(deps), ...own };
    }
    case "analysis": {
      const { requestAnalysis, analyseRequestDirect } = createSessionProcessingActivities(deps);
      return { requestAnalysis, analyseRequestDirect };
    }
    case "batch-processing":
      // The maintenance workflow (history retention) runs on the batch-processing queue.
      return {
        ...createRunRecordActivities(deps),
        ...createBatchCreationActivities(deps),
        ...createBatchStatusActivities(deps),
        ...createHistoryRetentionActivities(deps),
      };
  }
}

/** Every activity of the pipeline, bound to its dependencies: what workflows may schedule. */
export function createActivities(given: ActivityDeps) {
  const deps = activityDeps(given);
  return {
    ...createRunRecordActivities(deps),
    ...csvImportActivities(deps),
    ...createImportProcessingActivities(deps),
    ...createImportClaimActivities(deps),
    ...createSessionProcessingActivities(deps),
    ...createBatchCreationActivities(deps),
    ...createBatchStatusActivities(deps),
    ...createHistoryRetentionActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
