// The failure types activities throw (ApplicationFailure.type) and workflows match on: the one
// list of them. Plain constants only: workflow code imports this.
//
// Who owns retries: an activity does one thing and throws one of these; the workflow's retry
// policy decides whether to try again (a type marked non-retryable is never retried); once the
// policy is exhausted the failure reaches the workflow, which decides what it means and records
// it through a small activity. No activity counts Temporal attempts or reads the retry policy.

/**
 * A fetch found its source host's global concurrency limit taken (non-retryable): the workflow
 * tries that item again later in the run instead of counting a failed attempt.
 */
export const SOURCE_HOST_BUSY = "SourceHostBusy";

/** The CSV source refused for good (404, refused credentials, an HTML page): non-retryable. */
export const CSV_SOURCE_REJECTED = "CsvSourceRejected";
/** The CSV file itself cannot be read (not CSV, missing columns): non-retryable. */
export const CSV_FILE_REJECTED = "CsvFileRejected";
/** The CSV source failed in a way a later attempt may not (timeout, 5xx): retryable. */
export const CSV_SOURCE_UNAVAILABLE = "CsvSourceUnavailable";
/** Anything else while importing a CSV (e.g. the database): retryable. */
export const CSV_IMPORT_ERROR = "CsvImportError";

/** A transcript fetch failed in a way a later attempt may not (timeout, 5xx): retryable. */
export const TRANSCRIPT_UNAVAILABLE = "TranscriptUnavailable";
/** A transcript fetch failed for good (404, refused credentials, an HTML page): non-retryable. */
export const TRANSCRIPT_REJECTED = "TranscriptRejected";

/** A model call failed in a way a later attempt may not (429, 5xx, timeout): retryable. */
export const ANALYSIS_UNAVAILABLE = "AnalysisUnavailable";
/** The model API refused the request for good (4xx other than 408/409/429): non-retryable. */
export const ANALYSIS_REJECTED = "AnalysisRejected";
/** Asked to apply an analysis whose answer was never stored: non-retryable. */
export const ANALYSIS_ANSWER_MISSING = "AnalysisAnswerMissing";
