// The workflow bundle: every workflow type the workers serve. Deterministic code only.

export { batchCreationWorkflow, batchStatusWorkflow } from "./batch-processing.ts";
export { csvImportWorkflow } from "./csv-import.ts";
export { historyRetentionWorkflow } from "./history-retention.ts";
export { importProcessingWorkflow } from "./import-processing.ts";
export { sessionProcessingWorkflow } from "./session-processing.ts";
