// Limits of the workflows' retry policies and of the data's own counters. Plain constants only:
// workflow code imports this. Activities never read the Temporal retry limits below: those
// belong to the workflow that sets the policy (domain/failure-types.ts says who owns retries).

/** Attempts of one import-processing activity within a run (the workflow's retry policy). */
export const IMPORT_ACTIVITY_MAX_ATTEMPTS = 3;
/**
 * Runs in which a transient transcript failure is retried before the stage fails for good: a
 * count kept on the import row (SessionImport.attempts), passed by the workflow when it records
 * a failure.
 */
export const MAX_TRANSCRIPT_ATTEMPTS = 3;
/** Attempts of one direct-mode model call within a run (the workflow's retry policy). */
export const DIRECT_ANALYSIS_MAX_ATTEMPTS = 3;
