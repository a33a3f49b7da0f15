/**
 * The stand-in's exported contract: the behaviour knobs, options, the handle returned by
 * startOpenAIStandIn, its counters and request log, and the OpenAI wire shapes (error bodies,
 * batch objects, batch output lines, files) that tests read back. server.ts re-exports all of it,
 * so callers keep importing from "openai-stand-in/server.ts"; the modules import it from here.
 */

import type { Batch, BatchError, BatchRequestCounts, BatchUsage } from "openai/resources/batches";
import type { ChatCompletion } from "openai/resources/chat/completions";
import type { FileObject } from "openai/resources/files";

export type BatchOutcome = "completed" | "failed" | "expired";
export type MalformedOutputKind = "invalid_json" | "missing_fields";

export interface BatchTimings {
  /** Time in `validating` after creation. */
  validatingMs: number;
  /** Time in `in_progress`; lines are executed evenly over it. */
  inProgressMs: number;
  /** Time in `finalizing` before `completed`. */
  finalizingMs: number;
  /** Time in `cancelling` after a cancel request, before `cancelled`. */
  cancellingMs: number;
}

/** Seeded random failures for every request; one draw per request decides its fate. */
export interface FailureInjection {
  /** Share of requests answered 429 (0..1). */
  rate429?: number;
  /** Share of requests answered 500 (0..1). */
  rate500?: number;
  /** Share of requests never answered (until the client gives up or the server closes). */
  timeoutRate?: number;
  /** `retry-after` on injected 429s, in seconds (fractions allowed; the SDK parses floats). */
  retryAfterSeconds?: number;
  /** Seed of the generator; configuring `failures` restarts the sequence. */
  seed?: number;
}

/** Fail the next `count` requests (any route) with `status`, before any random injection. */
export interface FailNext {
  count: number;
  status: 429 | 500;
  retryAfterSeconds?: number;
}

/** How an injected failure answers: a status, or "timeout" (never answered). */
export type InjectedFailureKind = 429 | 500 | "timeout";

/**
 * Chat completions whose transcript contains `text` always fail with `failure` (after failNext,
 * before the random draw, which they do not consume): a session that never gets through.
 */
export interface FailRequestsMatching {
  text: string;
  failure: InjectedFailureKind;
}

export interface StandInBehaviour {
  /** Delay before every response. Default 0. */
  latencyMs?: number;
  /** Batch state durations; a patch merges field by field. Default 200/500/200, cancel 200. */
  batch?: Partial<BatchTimings>;
  /** How batches end. Default "completed". Captured when a batch is created. */
  batchOutcome?: BatchOutcome;
  /** Batch lines whose custom_id or transcript contains this go to the error file. */
  failLinesMatching?: string | undefined;
  /** HTTP status written for those lines. Default 500. */
  failLinesStatus?: 400 | 500;
  /** Answers for transcripts (or batch custom_ids) containing this are malformed. */
  malformedOutputMatching?: string | undefined;
  /** How a malformed answer is broken. Default "invalid_json" (truncated JSON). */
  malformedOutputKind?: MalformedOutputKind;
  /** Seeded random failures; undefined turns them off (the default). */
  failures?: FailureInjection | undefined;
  /** Deterministic failures for the next requests; undefined clears them. */
  failNext?: FailNext | undefined;
  /** Chat completions that always fail, by transcript content; undefined clears them. */
  failRequestsMatching?: readonly FailRequestsMatching[] | undefined;
  /** Batch output lines whose custom_id or transcript contains this are written as broken JSON. */
  corruptLinesMatching?: string | undefined;
}

export interface StandInOptions {
  /** Default 0: a free port. */
  port?: number;
  /** Loopback address to bind; default 127.0.0.1. Other addresses are refused. */
  host?: string;
  /** When set, requests must carry `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  behaviour?: StandInBehaviour;
}

export interface StandInStats {
  /** Requests by route, e.g. "POST /v1/chat/completions"; unknown routes count as "unmatched". */
  requests: Record<string, number>;
  totalRequests: number;
  unauthorized: number;
  /** Chat completions answered with 200 (batch lines not included). */
  chatCompletions: number;
  injected: { rateLimited: number; serverErrors: number; timeouts: number };
  batchesCreated: number;
  /** Terminal batches are counted when first observed in that state (evaluation is lazy). */
  batchesCompleted: number;
  batchesFailed: number;
  batchesExpired: number;
  batchesCancelled: number;
  /** Files ever stored: uploads plus generated batch output and error files. */
  filesStored: number;
}

/** One request as the stand-in saw it. */
export interface StandInRequestLogEntry {
  /** Arrival order, from 1. */
  seq: number;
  /** Arrival time, ms since the epoch. */
  at: number;
  method: string;
  /** The matched route, e.g. "POST /v1/chat/completions", or "unmatched". */
  route: string;
  /** The status answered, "timeout" when left hanging, undefined while (or if never) answered. */
  outcome: number | "timeout" | undefined;
  /** Set when the answer was an injected failure. */
  injected: InjectedFailureKind | undefined;
  /** The `retry-after` sent with an injected 429. */
  retryAfterSeconds: number | undefined;
  /** The SDK's X-Stainless-Retry-Count header: 0 on a first try, n on its n-th retry. */
  sdkRetryCount: number | undefined;
  /** Chat completions: the start of the transcript (last user message), to tell calls apart. */
  transcriptStart: string | undefined;
}

export interface OpenAIStandIn {
  /** Base URL for the SDK, ending in /v1. */
  url: string;
  port: number;
  configure(patch: Partial<StandInBehaviour>): void;
  stats(): StandInStats;
  /** The most recent requests (up to 10,000), oldest first. */
  requestLog(): StandInRequestLogEntry[];
  /**
   * Loses a batch the way OpenAI's side once did: from now on retrieve, cancel and list answer
   * as if it never existed (404 "No batch found"). False when there was no such batch.
   */
  loseBatch(batchId: string): boolean;
  /** Loses a stored file (uploads, batch output and error files): its routes answer 404. */
  loseFile(fileId: string): boolean;
  close(): Promise<void>;
}

/** OpenAI's error body, as the SDK reads it into APIError.code/param/type. */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** One line of a batch output or error file. */
export interface BatchOutputLine {
  id: string;
  custom_id: string;
  /** The HTTP answer to the line; null when the line never ran (e.g. batch_expired). */
  response: { status_code: number; request_id: string; body: ChatCompletion | ErrorBody } | null;
  /** Non-HTTP failure of the line; null whenever `response` is set. */
  error: { code: string; message: string } | null;
}

/** A batch as the API returns it: unset timestamps are null on the wire. */
export interface BatchObject {
  id: string;
  object: "batch";
  endpoint: string;
  errors: { object: "list"; data: BatchError[] } | null;
  input_file_id: string;
  completion_window: string;
  status: Batch["status"];
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: number;
  in_progress_at: number | null;
  expires_at: number;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
  request_counts: BatchRequestCounts;
  usage: BatchUsage;
  metadata: Record<string, string> | null;
}

export interface FileWire extends Omit<FileObject, "expires_at" | "status_details"> {
  expires_at: number | null;
  status_details: string | null;
}
