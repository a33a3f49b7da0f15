/**
 * The pipeline's variables: when and how much the CSV import, import processing, session
 * processing and batch processing schedulers do, how transcripts and CSVs are fetched, and which
 * companies this deployment imports. One area of the configuration schema (schema.ts joins them).
 */
import { z } from "zod";
import { cron, int, optionalText, timeZone } from "./env-values.ts";
import { allowedHosts, privateNetworks } from "./fetch-rules-env.ts";

const MB = 1024 * 1024;

/** `region:<name>` is the only documented filter. */
const companiesFilter = optionalText.transform((value, ctx) => {
  if (value === undefined) return undefined;
  const match = /^region:([A-Za-z0-9_-]+)$/.exec(value);
  if (!match?.[1]) {
    ctx.addIssue({ code: "custom", message: `expected "region:<name>", got "${value}"` });
    return z.NEVER;
  }
  return { region: match[1] };
});

export const sourcesEnv = z.object({
  CSV_IMPORT_INTERVAL: cron("*/10 * * * *"),
  CSV_IMPORT_BATCH_SIZE: int(10, 1, 1000),
  CSV_IMPORT_MAX_CONCURRENT: int(5, 1, 100),
  CSV_IMPORT_TIMEOUT: int(300_000, 1_000, 24 * 3_600_000),
  CSV_IMPORT_MAX_BYTES: int(200 * MB, 1024, 16 * 1024 * MB),
  CSV_IMPORT_RETRY_INTERVAL_MS: int(5_000, 100, 300_000),
  IMPORT_PROCESSING_INTERVAL: cron("*/2 * * * *"),
  IMPORT_PROCESSING_TIMEOUT: int(120_000, 1_000, 24 * 3_600_000),
  IMPORT_PROCESSING_BATCH_SIZE: int(50, 1, 10_000),
  IMPORT_PROCESSING_MAX_CONCURRENT: int(20, 1, 1_000),
  IMPORT_PROCESSING_RETRY_INTERVAL_MS: int(2_000, 100, 300_000),
  IMPORT_TIME_ZONE: timeZone("UTC"),
  TRANSCRIPT_FETCH_TIMEOUT: int(30_000, 100, 3_600_000),
  TRANSCRIPT_MAX_BYTES: int(5 * MB, 1024, 1024 * MB),
  TRANSCRIPT_MAX_MESSAGES: int(5_000, 1, 10_000_000),
  IMPORT_MAX_ATTEMPTS: int(10, 1, 1_000),
  FETCH_ALLOWED_HOSTS: allowedHosts,
  FETCH_MAX_PER_HOST: int(4, 1, 1_000),
  FETCH_HOST_WAIT_MS: int(10_000, 0, 600_000),
  FETCH_ALLOW_PRIVATE_NETWORKS: privateNetworks,
  FETCH_MIN_BYTES_PER_SECOND: int(1024, 0, 1024 * MB),
  SESSION_PROCESSING_INTERVAL: cron("*/5 * * * *"),
  SESSION_PROCESSING_BATCH_SIZE: int(50, 1, 10_000),
  BATCH_PROCESSING_INTERVAL: cron("*/5 * * * *"),
  BATCH_PROCESSING_CHECK_INTERVAL: cron("*/2 * * * *"),
  BATCH_MIN_REQUESTS: int(10, 1, 50_000),
  BATCH_MAX_WAIT_MS: int(30 * 60_000, 0, 7 * 24 * 3_600_000),
  BATCH_MAX_REQUESTS: int(1000, 1, 50_000),
  CSV_COMPANIES_FILTER: companiesFilter,
});

/** The scheduler stages' parts of Config, the fetch limits and the companies filter. */
export function sourcesSection(e: z.output<typeof sourcesEnv>) {
  return {
    csvImport: {
      interval: e.CSV_IMPORT_INTERVAL,
      batchSize: e.CSV_IMPORT_BATCH_SIZE,
      maxConcurrent: e.CSV_IMPORT_MAX_CONCURRENT,
      timeoutMs: e.CSV_IMPORT_TIMEOUT,
      maxBytes: e.CSV_IMPORT_MAX_BYTES,
      /** Wait before a failed fetch's second attempt in the same run; doubles after that. */
      retryIntervalMs: e.CSV_IMPORT_RETRY_INTERVAL_MS,
    },
    importProcessing: {
      interval: e.IMPORT_PROCESSING_INTERVAL,
      timeoutMs: e.IMPORT_PROCESSING_TIMEOUT,
      /** Imports claimed per page (a run drains every page). */
      batchSize: e.IMPORT_PROCESSING_BATCH_SIZE,
      /** Activity slots of each import-processing worker replica. */
      maxConcurrent: e.IMPORT_PROCESSING_MAX_CONCURRENT,
      /** Wait before a failed import's second attempt in the same run; doubles after that. */
      retryIntervalMs: e.IMPORT_PROCESSING_RETRY_INTERVAL_MS,
      /** Zone of the companies' wall-clock timestamps (CSV dates, transcript lines). */
      timeZone: e.IMPORT_TIME_ZONE,
      transcriptTimeoutMs: e.TRANSCRIPT_FETCH_TIMEOUT,
      transcriptMaxBytes: e.TRANSCRIPT_MAX_BYTES,
      /** A transcript with more messages fails its stage with the reason (none are stored). */
      transcriptMaxMessages: e.TRANSCRIPT_MAX_MESSAGES,
      /** processImport attempts (Temporal's retries included) before an import is FAILED. */
      maxAttempts: e.IMPORT_MAX_ATTEMPTS,
    },
    /** Hosts CSV and transcript fetches may reach (FETCH_ALLOWED_HOSTS); empty: any host. */
    fetchAllowedHosts: e.FETCH_ALLOWED_HOSTS,
    /** Fetches at once to one source host, across every replica (a global lease). */
    fetchMaxPerHost: e.FETCH_MAX_PER_HOST,
    /** How long a fetch waits for its host's slot before the run retries it later. */
    fetchHostWaitMs: e.FETCH_HOST_WAIT_MS,
    /** FETCH_ALLOW_PRIVATE_NETWORKS: internal addresses fetches may reach (true: any). */
    fetchAllowPrivateNetworks: e.FETCH_ALLOW_PRIVATE_NETWORKS,
    /** FETCH_MIN_BYTES_PER_SECOND: a body slower than this over 10 s is aborted (0: no floor). */
    fetchMinBytesPerSecond: e.FETCH_MIN_BYTES_PER_SECOND,
    sessionProcessing: {
      interval: e.SESSION_PROCESSING_INTERVAL,
      batchSize: e.SESSION_PROCESSING_BATCH_SIZE,
    },
    batchProcessing: {
      interval: e.BATCH_PROCESSING_INTERVAL,
      checkInterval: e.BATCH_PROCESSING_CHECK_INTERVAL,
      /** A company's batch is created once this many requests wait... */
      minRequests: e.BATCH_MIN_REQUESTS,
      /** ...or once its oldest request waited this long. */
      maxWaitMs: e.BATCH_MAX_WAIT_MS,
      maxRequests: e.BATCH_MAX_REQUESTS,
    },
    /** CSV_COMPANIES_FILTER: import only this region's companies (unset: all). */
    companiesFilter: e.CSV_COMPANIES_FILTER,
  };
}
