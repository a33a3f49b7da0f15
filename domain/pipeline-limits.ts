// Limits shared by workflows and activities. Plain constants only: workflow code imports this.

/** Attempts of one import-processing activity within a run (Temporal retries with backoff). */
export const IMPORT_ACTIVITY_MAX_ATTEMPTS = 3;
/** Runs in which a transient transcript failure is retried before the stage fails for good. */
export const MAX_TRANSCRIPT_ATTEMPTS = 3;
/** Attempts of one direct-mode analysis within a run. */
export const DIRECT_ANALYSIS_MAX_ATTEMPTS = 3;
/**
 * Failure type of a fetch that found its source host's global concurrency limit taken: the
 * workflow tries that item again later in the run instead of counting a failed attempt.
 */
export const SOURCE_HOST_BUSY = "SourceHostBusy";
