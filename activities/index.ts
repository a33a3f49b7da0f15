import { createBatchProcessingActivities } from "./batch-processing.ts";
import { recordingImportOutcomes } from "./company-import-health.ts";
import { createCsvImportActivities } from "./csv-import.ts";
import type { ActivityDeps } from "./deps.ts";
import { createImportProcessingActivities } from "./import-processing.ts";
import { createRunRecordActivities } from "./run-records.ts";
import { createSessionProcessingActivities } from "./session-processing.ts";

export type { ActivityDeps } from "./deps.ts";

/** Every activity of the pipeline, bound to its dependencies. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createRunRecordActivities(deps),
    ...withImportHealth(deps, createCsvImportActivities(deps)),
    ...createImportProcessingActivities(deps),
    ...createSessionProcessingActivities(deps),
    ...createBatchProcessingActivities(deps),
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
