/**
 * Local stand-in for the part of OpenAI's HTTP API that LiveDash uses: chat completions with a
 * JSON-schema response format, files (upload, metadata, content, list, delete) and the Batch
 * API (create, retrieve, list, cancel). Used by `npm run dev` without an OPENAI_API_KEY and by
 * tests, always through the real `openai` SDK, so every body and header follows the wire format
 * that SDK parses (see node_modules/openai/src/client.ts for retries and error mapping).
 *
 * Answers are deterministic: the "model" is `analyseTranscript` applied to the last user
 * message. Batches move through their states by wall-clock time since creation and are
 * evaluated lazily on each read, so the server keeps no timers. Failures (429/500/hung
 * requests, failed/expired batches, failing, malformed or corrupt batch lines) are injected
 * through the behaviour knobs, with a seeded generator so test runs repeat exactly. Every request
 * is logged with its arrival time and what it was answered, so tests can check retry timing.
 */

import { randomBytes } from "node:crypto";
import { setMaxListeners } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { Batch, BatchError, BatchRequestCounts, BatchUsage } from "openai/resources/batches";
import type { ChatCompletion } from "openai/resources/chat/completions";
import type { FileObject } from "openai/resources/files";
import { type Analysis, analyseTranscript } from "./analysis.ts";

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

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

export async function startOpenAIStandIn(options: StandInOptions = {}): Promise<OpenAIStandIn> {
  const host = options.host ?? "127.0.0.1";
  if (!LOOPBACK_HOSTS.has(host)) {
    throw new Error(`The OpenAI stand-in only binds to loopback addresses, not ${host}`);
  }
  const standIn = new StandIn(options.apiKey, options.behaviour ?? {});
  const server = createServer((req, res) => void standIn.handle(req, res));
  const port = await listen(server, options.port ?? 0, host);
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}/v1`,
    port,
    configure: (patch) => standIn.configure(patch),
    stats: () => standIn.snapshotStats(),
    requestLog: () => standIn.snapshotLog(),
    loseBatch: (batchId) => standIn.loseBatch(batchId),
    loseFile: (fileId) => standIn.loseFile(fileId),
    close: once(() => closeServer(server, standIn)),
  };
}

// ---------------------------------------------------------------------------------------------
// Behaviour
// ---------------------------------------------------------------------------------------------

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "::1", "localhost"]);
const DEFAULT_RETRY_AFTER_SECONDS = 1;
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const COMPLETION_WINDOW_MS = 24 * 60 * 60 * 1000;
const MAX_REPORTED_LINE_ERRORS = 100;
/** The request log is a bounded window, so a long-running dev stand-in does not grow forever. */
const MAX_LOGGED_REQUESTS = 10_000;
const LOGGED_TRANSCRIPT_CHARS = 200;

interface Behaviour {
  latencyMs: number;
  batch: BatchTimings;
  batchOutcome: BatchOutcome;
  failLinesMatching: string | undefined;
  failLinesStatus: 400 | 500;
  malformedOutputMatching: string | undefined;
  malformedOutputKind: MalformedOutputKind;
  failures: FailureInjection | undefined;
  failRequestsMatching: readonly FailRequestsMatching[];
  corruptLinesMatching: string | undefined;
}

const DEFAULT_BEHAVIOUR: Behaviour = {
  latencyMs: 0,
  batch: { validatingMs: 200, inProgressMs: 500, finalizingMs: 200, cancellingMs: 200 },
  batchOutcome: "completed",
  failLinesMatching: undefined,
  failLinesStatus: 500,
  malformedOutputMatching: undefined,
  malformedOutputKind: "invalid_json",
  failures: undefined,
  failRequestsMatching: [],
  corruptLinesMatching: undefined,
};

/** A key present in the patch replaces the value, and undefined restores the default. */
function patchBehaviour(current: Behaviour, patch: StandInBehaviour): Behaviour {
  const next: Behaviour = { ...current, batch: { ...current.batch } };
  if (patch.batch) {
    for (const [key, value] of Object.entries(patch.batch)) {
      if (value !== undefined) next.batch[key as keyof BatchTimings] = value;
    }
  }
  if (Object.hasOwn(patch, "latencyMs")) next.latencyMs = patch.latencyMs ?? 0;
  if (Object.hasOwn(patch, "batchOutcome")) next.batchOutcome = patch.batchOutcome ?? "completed";
  if (Object.hasOwn(patch, "failLinesMatching")) next.failLinesMatching = patch.failLinesMatching;
  if (Object.hasOwn(patch, "failLinesStatus")) next.failLinesStatus = patch.failLinesStatus ?? 500;
  if (Object.hasOwn(patch, "malformedOutputMatching")) {
    next.malformedOutputMatching = patch.malformedOutputMatching;
  }
  if (Object.hasOwn(patch, "malformedOutputKind")) {
    next.malformedOutputKind = patch.malformedOutputKind ?? "invalid_json";
  }
  if (Object.hasOwn(patch, "failures")) next.failures = patch.failures && { ...patch.failures };
  if (Object.hasOwn(patch, "failRequestsMatching")) {
    next.failRequestsMatching = (patch.failRequestsMatching ?? []).map((rule) => ({ ...rule }));
  }
  if (Object.hasOwn(patch, "corruptLinesMatching")) {
    next.corruptLinesMatching = patch.corruptLinesMatching;
  }
  validateBehaviour(next);
  return next;
}

function validateBehaviour(behaviour: Behaviour): void {
  const durations = { latencyMs: behaviour.latencyMs, ...behaviour.batch };
  for (const [name, value] of Object.entries(durations)) {
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`${name} must be >= 0`);
  }
  const failures = behaviour.failures ?? {};
  const rates = [failures.rate429 ?? 0, failures.rate500 ?? 0, failures.timeoutRate ?? 0];
  if (rates.some((rate) => !(rate >= 0 && rate <= 1))) {
    throw new RangeError("failure rates must be between 0 and 1");
  }
  if (rates.reduce((sum, rate) => sum + rate, 0) > 1) {
    throw new RangeError("failure rates must add up to at most 1");
  }
  if ((failures.retryAfterSeconds ?? 0) < 0) throw new RangeError("retryAfterSeconds must be >= 0");
  for (const rule of behaviour.failRequestsMatching) {
    if (rule.text === "") throw new RangeError("failRequestsMatching.text must not be empty");
    if (![429, 500, "timeout"].includes(rule.failure)) {
      throw new RangeError("failRequestsMatching.failure must be 429, 500 or timeout");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Deterministic randomness
// ---------------------------------------------------------------------------------------------

/** mulberry32: tiny seeded PRNG, good enough to pick failures and shuffle lines. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a, to derive a shuffle seed from a batch's input. */
function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash = Math.imul(hash ^ text.charCodeAt(index), 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * Fisher-Yates with a fixed seed. Real batch output has no guaranteed order, so a result that
 * happens to keep the input order is rotated by one: consumers must never rely on order.
 */
function deterministicShuffle<T>(items: readonly T[], seed: number): T[] {
  const result = [...items];
  const random = seededRandom(seed);
  for (let index = result.length - 1; index > 0; index--) {
    const other = Math.floor(random() * (index + 1));
    const swap = result[index] as T;
    result[index] = result[other] as T;
    result[other] = swap;
  }
  if (result.length > 1 && result.every((item, index) => item === items[index])) {
    result.push(result.shift() as T);
  }
  return result;
}

const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

function randomId(length: number): string {
  const bytes = randomBytes(length);
  let id = "";
  for (const byte of bytes) id += ID_ALPHABET[byte % ID_ALPHABET.length];
  return id;
}

function requestId(): string {
  return `req_${randomBytes(16).toString("hex")}`;
}

function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

// ---------------------------------------------------------------------------------------------
// Errors and replies
// ---------------------------------------------------------------------------------------------

type Reply =
  | { status: number; json: unknown; headers?: Record<string, string> }
  | { status: number; bytes: Buffer; contentType: string };

/** Thrown by handlers to answer with an OpenAI error body. */
class HttpError extends Error {
  constructor(readonly reply: Reply) {
    super(`HTTP ${reply.status}`);
  }
}

function errorBody(
  message: string,
  type: string,
  param: string | null = null,
  code: string | null = null,
): ErrorBody {
  return { error: { message, type, param, code } };
}

function badRequest(message: string, param: string | null = null, code: string | null = null) {
  return new HttpError({
    status: 400,
    json: errorBody(message, "invalid_request_error", param, code),
  });
}

function notFound(message: string, param: string | null = "id") {
  return new HttpError({ status: 404, json: errorBody(message, "invalid_request_error", param) });
}

function rateLimitReply(retryAfterSeconds: number): Reply {
  const message =
    "Rate limit reached for requests per min (RPM): Limit 500, Used 500, Requested 1. " +
    `Please try again in ${retryAfterSeconds}s. ` +
    "Visit https://platform.openai.com/account/rate-limits to learn more.";
  return {
    status: 429,
    json: errorBody(message, "requests", null, "rate_limit_exceeded"),
    headers: {
      "retry-after": String(retryAfterSeconds),
      "x-ratelimit-limit-requests": "500",
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": `${retryAfterSeconds}s`,
      "x-ratelimit-limit-tokens": "200000",
      "x-ratelimit-remaining-tokens": "199000",
      "x-ratelimit-reset-tokens": "300ms",
    },
  };
}

function serverErrorBody(): ErrorBody {
  return errorBody(
    "The server had an error while processing your request. Sorry about that!",
    "server_error",
  );
}

// ---------------------------------------------------------------------------------------------
// Chat completions (shared by the endpoint and batch lines)
// ---------------------------------------------------------------------------------------------

type ChatOutcome = { status: 200; body: ChatCompletion } | { status: 400; body: ErrorBody };

interface ChatRequest {
  model: string;
  messages: { role: string; text: string }[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Text of a message's content: a string, or the text parts of a content array. */
function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .filter((part) => isRecord(part) && part.type === "text" && typeof part.text === "string")
    .map((part) => (part as { text: string }).text)
    .join("\n");
}

function parseChatRequest(body: unknown): ChatRequest {
  if (!isRecord(body)) throw badRequest("The request body must be a JSON object.");
  const { model, messages } = body;
  if (typeof model !== "string" || model === "") {
    throw badRequest("you must provide a model parameter", "model", "missing_required_parameter");
  }
  if (!Array.isArray(messages) || messages.length === 0) {
    throw badRequest("'messages' must contain at least one message.", "messages", "invalid_value");
  }
  if (body.stream === true) {
    throw badRequest("The stand-in does not support streaming.", "stream", "unsupported_value");
  }
  validateResponseFormat(body.response_format);
  return { model, messages: messages.map(parseMessage) };
}

function parseMessage(message: unknown, index: number): { role: string; text: string } {
  if (!isRecord(message) || typeof message.role !== "string") {
    throw badRequest(
      `Invalid value for 'messages[${index}]': expected an object with a role.`,
      `messages[${index}]`,
      "invalid_value",
    );
  }
  return { role: message.role, text: contentText(message.content) };
}

/**
 * The fields OpenAI rejects up front: a json_schema needs a valid name and an object schema,
 * and strict mode needs additionalProperties false with every property required (top level).
 */
function validateResponseFormat(format: unknown): void {
  if (format === undefined || format === null) return;
  if (!isRecord(format) || typeof format.type !== "string") {
    throw badRequest(
      "Invalid 'response_format': expected an object with a type.",
      "response_format",
    );
  }
  if (format.type !== "json_schema") return;
  const spec = format.json_schema;
  if (!isRecord(spec)) {
    throw badRequest(
      "Missing required parameter: 'response_format.json_schema'.",
      "response_format.json_schema",
    );
  }
  if (typeof spec.name !== "string" || !/^[a-zA-Z0-9_-]{1,64}$/.test(spec.name)) {
    throw badRequest(
      "Invalid 'response_format.json_schema.name': " +
        "must be 1-64 characters of a-z, A-Z, 0-9, _ or -.",
      "response_format.json_schema.name",
      "invalid_value",
    );
  }
  if (spec.schema !== undefined && !isRecord(spec.schema)) {
    throw badRequest(
      "Invalid 'response_format.json_schema.schema'.",
      "response_format.json_schema.schema",
    );
  }
  if (spec.strict === true && isRecord(spec.schema)) validateStrictSchema(spec.name, spec.schema);
}

function validateStrictSchema(name: string, schema: Record<string, unknown>): void {
  const invalid = (detail: string) =>
    badRequest(
      `Invalid schema for response_format '${name}': In context=(), ${detail}`,
      "response_format",
      "invalid_json_schema",
    );
  if (schema.additionalProperties !== false) {
    throw invalid("'additionalProperties' is required to be supplied and to be false.");
  }
  const properties = isRecord(schema.properties) ? Object.keys(schema.properties) : [];
  const required = Array.isArray(schema.required) ? schema.required : [];
  const missing = properties.find((property) => !required.includes(property));
  if (missing !== undefined) {
    throw invalid(
      "'required' is required to be supplied and to be an array including every key in " +
        `properties. Missing '${missing}'.`,
    );
  }
}

/** The transcript is the content of the last user message. */
function transcriptOf(request: ChatRequest): string {
  const users = request.messages.filter((message) => message.role === "user");
  return users.at(-1)?.text ?? "";
}

function matches(needle: string | undefined, ...haystacks: string[]): boolean {
  return needle !== undefined && needle !== "" && haystacks.some((text) => text.includes(needle));
}

function answerContent(analysis: Analysis, malformed: MalformedOutputKind | undefined): string {
  const json = JSON.stringify(analysis);
  if (malformed === "invalid_json") return json.slice(0, Math.max(1, Math.floor(json.length / 2)));
  if (malformed === "missing_fields") {
    const { category: _category, summary: _summary, ...partial } = analysis;
    return JSON.stringify(partial);
  }
  return json;
}

function buildCompletion(request: ChatRequest, content: string): ChatCompletion {
  const promptChars = request.messages.reduce((sum, message) => sum + message.text.length, 0);
  const promptTokens = Math.ceil(promptChars / 4) + 3 * request.messages.length;
  const completionTokens = Math.ceil(content.length / 4);
  return {
    id: `chatcmpl-${randomId(29)}`,
    object: "chat.completion",
    created: seconds(Date.now()),
    model: request.model,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content, refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: "stop",
      },
    ],
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: 0,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    },
    service_tier: "default",
    system_fingerprint: "fp_standin",
  };
}

function runChatCompletion(body: unknown, behaviour: Behaviour, customId = ""): ChatOutcome {
  let request: ChatRequest;
  try {
    request = parseChatRequest(body);
  } catch (error) {
    if (error instanceof HttpError && "json" in error.reply) {
      return { status: 400, body: error.reply.json as ErrorBody };
    }
    throw error;
  }
  const transcript = transcriptOf(request);
  const malformed = matches(behaviour.malformedOutputMatching, transcript, customId)
    ? behaviour.malformedOutputKind
    : undefined;
  const content = answerContent(analyseTranscript(transcript), malformed);
  return { status: 200, body: buildCompletion(request, content) };
}

// ---------------------------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------------------------

interface LineResult {
  lineId: string;
  customId: string;
  requestId: string;
  statusCode: number;
  body: ChatCompletion | ErrorBody;
  /** Written to its file as broken JSON (a line cut in half). */
  corrupt: boolean;
}

interface BatchRecord {
  id: string;
  createdAtMs: number;
  inputFileId: string;
  endpoint: string;
  completionWindow: string;
  metadata: Record<string, string> | null;
  /** Captured at creation so later `configure` calls don't rewrite a running batch. */
  timings: BatchTimings;
  outcome: BatchOutcome;
  validationErrors: BatchError[];
  /** Every line's answer, in execution order (a deterministic shuffle of the input). */
  results: LineResult[];
  cancelRequestedAtMs: number | null;
  settled: { outputFileId: string | null; errorFileId: string | null } | null;
}

interface BatchInputLine {
  customId: string;
  body: unknown;
}

/** A batch's state at one instant, derived from its creation time and durations. */
interface Timeline {
  status: Batch["status"];
  /** Lines executed so far, counted from the start of the execution order. */
  executed: number;
  inProgressAt: number | null;
  finalizingAt: number | null;
  completedAt: number | null;
  failedAt: number | null;
  expiredAt: number | null;
  cancellingAt: number | null;
  cancelledAt: number | null;
}

const TERMINAL_STATUSES = new Set<Batch["status"]>(["completed", "failed", "expired", "cancelled"]);
const CANCELLABLE_STATUSES = new Set<Batch["status"]>(["validating", "in_progress"]);

/** Validates a JSONL input file the way the Batch API does before running anything. */
function parseBatchInput(
  content: string,
  endpoint: string,
): { lines: BatchInputLine[]; errors: BatchError[] } {
  const lines: BatchInputLine[] = [];
  const errors: BatchError[] = [];
  const seen = new Set<string>();
  const rawLines = content.split("\n");
  for (let index = 0; index < rawLines.length; index++) {
    const raw = (rawLines[index] ?? "").trim();
    if (raw === "") continue;
    const parsed = parseBatchLine(raw, endpoint, index + 1, seen);
    if ("customId" in parsed) lines.push(parsed);
    else errors.push(parsed);
  }
  if (lines.length === 0 && errors.length === 0) {
    errors.push({
      code: "empty_file",
      message: "The batch input file is empty.",
      param: null,
      line: null,
    });
  }
  return { lines, errors: errors.slice(0, MAX_REPORTED_LINE_ERRORS) };
}

function parseBatchLine(
  raw: string,
  endpoint: string,
  line: number,
  seen: Set<string>,
): BatchInputLine | BatchError {
  const fail = (code: string, message: string, param: string | null = null): BatchError => ({
    code,
    message,
    param,
    line,
  });
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return fail("invalid_json_line", "This line is not parseable as valid JSON.");
  }
  if (!isRecord(value)) return fail("invalid_json_line", "Each line must be a JSON object.");
  const { custom_id: customId, method, url, body } = value;
  if (typeof customId !== "string" || customId === "") {
    return fail(
      "missing_required_parameter",
      "Missing required parameter: 'custom_id'.",
      "custom_id",
    );
  }
  if (method !== "POST") {
    return fail("invalid_value", "The only supported method is POST.", "method");
  }
  if (url !== endpoint) {
    return fail("mismatched_endpoint", `The url must match the batch endpoint ${endpoint}.`, "url");
  }
  if (!isRecord(body)) {
    return fail("missing_required_parameter", "Missing required parameter: 'body'.", "body");
  }
  if (seen.has(customId)) {
    return fail(
      "duplicate_custom_id",
      "The custom_id for this request is a duplicate of another request.",
      "custom_id",
    );
  }
  seen.add(customId);
  return { customId, body };
}

function runBatchLine(line: BatchInputLine, behaviour: Behaviour): LineResult {
  const ids = {
    lineId: `batch_req_${randomId(24)}`,
    customId: line.customId,
    requestId: requestId(),
  };
  const transcript = safeTranscript(line.body);
  const corrupt = matches(behaviour.corruptLinesMatching, line.customId, transcript);
  if (matches(behaviour.failLinesMatching, line.customId, transcript)) {
    const body =
      behaviour.failLinesStatus === 400
        ? errorBody(
            "The request was rejected (simulated by the stand-in).",
            "invalid_request_error",
          )
        : serverErrorBody();
    return { ...ids, statusCode: behaviour.failLinesStatus, body, corrupt };
  }
  const outcome = runChatCompletion(line.body, behaviour, line.customId);
  return { ...ids, statusCode: outcome.status, body: outcome.body, corrupt };
}

/** The transcript of a raw chat-completions body, if it is one. */
function transcriptOfBody(buffer: Buffer): string | undefined {
  try {
    return transcriptOf(parseChatRequest(JSON.parse(buffer.toString("utf8"))));
  } catch {
    return undefined;
  }
}

function safeTranscript(body: unknown): string {
  try {
    return transcriptOf(parseChatRequest(body));
  } catch {
    return "";
  }
}

/** The state a batch would be in at `now` if nobody cancelled it. */
function scheduledTimeline(batch: BatchRecord, now: number): Timeline {
  const { validatingMs, inProgressMs, finalizingMs } = batch.timings;
  const startAt = batch.createdAtMs + validatingMs;
  const runEndAt = startAt + inProgressMs;
  const doneAt = runEndAt + finalizingMs;
  // An expiring batch only gets through half of its lines before the window closes.
  const runnable =
    batch.outcome === "expired" ? Math.floor(batch.results.length / 2) : batch.results.length;
  const base: Timeline = {
    status: "validating",
    executed: 0,
    inProgressAt: null,
    finalizingAt: null,
    completedAt: null,
    failedAt: null,
    expiredAt: null,
    cancellingAt: null,
    cancelledAt: null,
  };
  if (now < startAt) return base;
  if (batch.validationErrors.length > 0 || batch.outcome === "failed") {
    return { ...base, status: "failed", failedAt: startAt };
  }
  const running: Timeline = { ...base, status: "in_progress", inProgressAt: startAt };
  if (now < runEndAt) {
    const share = inProgressMs === 0 ? 1 : (now - startAt) / inProgressMs;
    return { ...running, executed: Math.floor(runnable * share) };
  }
  if (batch.outcome === "expired") {
    // The lines that never ran are reported as batch_expired in the error file.
    return { ...running, status: "expired", expiredAt: runEndAt, executed: runnable };
  }
  const finalizing: Timeline = {
    ...running,
    status: "finalizing",
    finalizingAt: runEndAt,
    executed: runnable,
  };
  if (now < doneAt) return finalizing;
  return { ...finalizing, status: "completed", completedAt: doneAt };
}

function timelineAt(batch: BatchRecord, now: number): Timeline {
  const cancelAt = batch.cancelRequestedAtMs;
  if (cancelAt === null) return scheduledTimeline(batch, now);
  // Whatever ran before the cancel request stays; nothing else runs.
  const frozen = scheduledTimeline(batch, cancelAt);
  const cancelledAt = cancelAt + batch.timings.cancellingMs;
  const cancelling: Timeline = { ...frozen, status: "cancelling", cancellingAt: cancelAt };
  return now < cancelledAt ? cancelling : { ...cancelling, status: "cancelled", cancelledAt };
}

function isSuccess(result: LineResult): result is LineResult & { body: ChatCompletion } {
  return result.statusCode === 200;
}

function outputLine(result: LineResult): BatchOutputLine {
  return {
    id: result.lineId,
    custom_id: result.customId,
    response: { status_code: result.statusCode, request_id: result.requestId, body: result.body },
    error: null,
  };
}

function expiredLine(result: LineResult): BatchOutputLine {
  return {
    id: result.lineId,
    custom_id: result.customId,
    response: null,
    error: {
      code: "batch_expired",
      message: "This request could not be executed before the completion window expired.",
    },
  };
}

function requestCounts(batch: BatchRecord, timeline: Timeline): BatchRequestCounts {
  if (timeline.inProgressAt === null) return { total: 0, completed: 0, failed: 0 };
  const executed = batch.results.slice(0, timeline.executed);
  const completed = executed.filter(isSuccess).length;
  const notRun = timeline.status === "expired" ? batch.results.length - executed.length : 0;
  return { total: batch.results.length, completed, failed: executed.length - completed + notRun };
}

function batchUsage(batch: BatchRecord, timeline: Timeline): BatchUsage {
  let input = 0;
  let output = 0;
  for (const result of batch.results.slice(0, timeline.executed)) {
    if (!isSuccess(result)) continue;
    input += result.body.usage?.prompt_tokens ?? 0;
    output += result.body.usage?.completion_tokens ?? 0;
  }
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: input + output,
  };
}

function toSeconds(ms: number | null): number | null {
  return ms === null ? null : seconds(ms);
}

function batchObject(batch: BatchRecord, timeline: Timeline): BatchObject {
  const failed = timeline.status === "failed";
  const errors = batch.validationErrors.length > 0 ? batch.validationErrors : OUTCOME_FAILED_ERRORS;
  const expiresAtMs =
    batch.outcome === "expired"
      ? batch.createdAtMs + batch.timings.validatingMs + batch.timings.inProgressMs
      : batch.createdAtMs + COMPLETION_WINDOW_MS;
  return {
    id: batch.id,
    object: "batch",
    endpoint: batch.endpoint,
    errors: failed ? { object: "list", data: errors } : null,
    input_file_id: batch.inputFileId,
    completion_window: batch.completionWindow,
    status: timeline.status,
    output_file_id: batch.settled?.outputFileId ?? null,
    error_file_id: batch.settled?.errorFileId ?? null,
    created_at: seconds(batch.createdAtMs),
    in_progress_at: toSeconds(timeline.inProgressAt),
    expires_at: seconds(expiresAtMs),
    finalizing_at: toSeconds(timeline.finalizingAt),
    completed_at: toSeconds(timeline.completedAt),
    failed_at: toSeconds(timeline.failedAt),
    expired_at: toSeconds(timeline.expiredAt),
    cancelling_at: toSeconds(timeline.cancellingAt),
    cancelled_at: toSeconds(timeline.cancelledAt),
    request_counts: requestCounts(batch, timeline),
    usage: batchUsage(batch, timeline),
    metadata: batch.metadata,
  };
}

const OUTCOME_FAILED_ERRORS: BatchError[] = [
  {
    code: "batch_failed",
    message: "The batch failed (simulated by the OpenAI stand-in).",
    param: null,
    line: null,
  },
];

function parseMetadata(value: unknown): Record<string, string> | null {
  if (value === undefined || value === null) return null;
  const valid =
    isRecord(value) &&
    Object.keys(value).length <= 16 &&
    Object.values(value).every((entry) => typeof entry === "string" && entry.length <= 512);
  if (!valid) {
    throw badRequest(
      "Invalid 'metadata': at most 16 string values of up to 512 characters.",
      "metadata",
    );
  }
  return value as Record<string, string>;
}

function jsonLine(line: BatchOutputLine): string {
  return `${JSON.stringify(line)}\n`;
}

/** A result as written to its file; a corrupt one is cut in half (its custom_id still shows). */
function writtenLine(result: LineResult): string {
  const json = JSON.stringify(outputLine(result));
  return `${result.corrupt ? json.slice(0, Math.floor(json.length / 2)) : json}\n`;
}

// ---------------------------------------------------------------------------------------------
// Cursor pages (GET /v1/batches, GET /v1/files)
// ---------------------------------------------------------------------------------------------

interface CursorList<T> {
  object: "list";
  data: T[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
}

function cursorPage<T extends { id: string }>(
  items: readonly T[],
  query: URLSearchParams,
): CursorList<T> {
  const requested = Number.parseInt(query.get("limit") ?? "", 10);
  const limit = Number.isNaN(requested) ? 20 : Math.min(Math.max(requested, 1), 100);
  const after = query.get("after");
  // An unknown cursor yields an empty page rather than restarting, so paging always ends.
  const start =
    after === null ? 0 : items.findIndex((item) => item.id === after) + 1 || items.length;
  const data = items.slice(start, start + limit);
  return {
    object: "list",
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: start + limit < items.length,
  };
}

// ---------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------

interface RouteContext {
  req: IncomingMessage;
  id: string;
  query: URLSearchParams;
  /** The body when it was read before routing (chat completions, to match and log them). */
  body?: PrereadBody;
}

type PrereadBody = { buffer: Buffer } | { error: unknown };

interface Route {
  method: string;
  pattern: string;
  handle(context: RouteContext): Promise<Reply> | Reply;
}

function matchRoute(
  routes: readonly Route[],
  method: string,
  pathname: string,
): { route: Route; id: string } | null {
  const segments = pathname.replace(/\/+$/, "").split("/");
  for (const route of routes) {
    if (route.method !== method) continue;
    const pattern = route.pattern.split("/");
    if (pattern.length !== segments.length) continue;
    let id = "";
    const same = pattern.every((part, index) => {
      const segment = segments[index] ?? "";
      if (part !== ":id") return part === segment;
      id = safeDecode(segment);
      return segment !== "";
    });
    if (same) return { route, id };
  }
  return null;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment; // a malformed escape simply names no stored object
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) {
      throw new HttpError({
        status: 413,
        json: errorBody("The request body is too large.", "invalid_request_error"),
      });
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

async function readJson(req: IncomingMessage, preread?: PrereadBody): Promise<unknown> {
  if (preread && "error" in preread) throw preread.error;
  const text = (preread ? preread.buffer : await readBody(req)).toString("utf8");
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest(
      "We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.",
    );
  }
}

/** Multipart parsing is delegated to the Web Request API built into Node. */
async function readForm(req: IncomingMessage): Promise<FormData> {
  const contentType = req.headers["content-type"] ?? "";
  if (!contentType.startsWith("multipart/form-data")) {
    throw badRequest("Expected a multipart/form-data body.");
  }
  const body = await readBody(req);
  const request = new Request("http://stand-in.local/", {
    method: "POST",
    headers: { "content-type": contentType },
    body: new Uint8Array(body),
  });
  try {
    return await request.formData();
  } catch {
    throw badRequest("Could not parse the multipart/form-data body.");
  }
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

const FILE_PURPOSES = new Set<string>(["assistants", "batch", "fine-tune", "vision", "user_data"]);

interface StoredFile {
  object: FileWire;
  content: Buffer;
}

type InjectedFailure = Reply | "timeout" | null;

class StandIn {
  private behaviour: Behaviour;
  private failNext: Required<FailNext> | undefined;
  private random: () => number = seededRandom(1);
  private readonly files = new Map<string, StoredFile>();
  private readonly batches = new Map<string, BatchRecord>();
  private readonly counters = emptyStats();
  private readonly log: StandInRequestLogEntry[] = [];
  private logged = 0;
  /** Aborted by close() so pending latency sleeps end at once. */
  readonly closing = new AbortController();
  private readonly routes: readonly Route[];

  constructor(
    private readonly apiKey: string | undefined,
    initial: StandInBehaviour,
  ) {
    // Every request sleeping out its latency listens on this one signal; hundreds is normal.
    setMaxListeners(0, this.closing.signal);
    this.behaviour = DEFAULT_BEHAVIOUR;
    this.configure(initial);
    this.routes = [
      { method: "POST", pattern: "/v1/chat/completions", handle: (c) => this.chatCompletions(c) },
      { method: "POST", pattern: "/v1/files", handle: (c) => this.uploadFile(c) },
      { method: "GET", pattern: "/v1/files", handle: (c) => this.listFiles(c) },
      {
        method: "GET",
        pattern: "/v1/files/:id",
        handle: (c) => ({ status: 200, json: this.file(c.id).object }),
      },
      { method: "DELETE", pattern: "/v1/files/:id", handle: (c) => this.deleteFile(c) },
      { method: "GET", pattern: "/v1/files/:id/content", handle: (c) => this.fileContent(c) },
      { method: "POST", pattern: "/v1/batches", handle: (c) => this.createBatch(c) },
      { method: "GET", pattern: "/v1/batches", handle: (c) => this.listBatches(c) },
      { method: "GET", pattern: "/v1/batches/:id", handle: (c) => this.retrieveBatch(c) },
      { method: "POST", pattern: "/v1/batches/:id/cancel", handle: (c) => this.cancelBatch(c) },
    ];
  }

  configure(patch: StandInBehaviour): void {
    const next = patch.failNext;
    if (next && !(Number.isInteger(next.count) && next.count >= 0)) {
      throw new RangeError("failNext.count must be a non-negative integer");
    }
    this.behaviour = patchBehaviour(this.behaviour, patch);
    if (Object.hasOwn(patch, "failures")) this.random = seededRandom(patch.failures?.seed ?? 1);
    if (Object.hasOwn(patch, "failNext")) {
      this.failNext = next && {
        count: next.count,
        status: next.status,
        retryAfterSeconds: next.retryAfterSeconds ?? this.retryAfterSeconds(),
      };
    }
  }

  loseBatch(batchId: string): boolean {
    return this.batches.delete(batchId);
  }

  loseFile(fileId: string): boolean {
    return this.files.delete(fileId);
  }

  snapshotStats(): StandInStats {
    return structuredClone(this.counters);
  }

  snapshotLog(): StandInRequestLogEntry[] {
    return structuredClone(this.log);
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.respond(req, res);
    } catch {
      // Only reachable when the client went away mid-request; there is nobody left to answer.
      res.destroy();
    }
  }

  private async respond(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const startedAt = Date.now();
    const url = new URL(req.url ?? "/", "http://stand-in.local");
    const method = req.method ?? "GET";
    const matched = matchRoute(this.routes, method, url.pathname);
    const route = matched ? `${matched.route.method} ${matched.route.pattern}` : "unmatched";
    this.count(route);
    const entry = this.logRequest(req, startedAt, method, route);
    try {
      if (this.behaviour.latencyMs > 0) {
        await sleep(this.behaviour.latencyMs, undefined, { signal: this.closing.signal });
      }
    } catch {
      return; // closing: the socket is being destroyed anyway
    }
    const reply = await this.reply(req, method, url, matched, entry);
    entry.outcome = reply === "timeout" ? "timeout" : reply.status;
    if (reply !== "timeout") send(res, reply, startedAt);
  }

  private logRequest(
    req: IncomingMessage,
    at: number,
    method: string,
    route: string,
  ): StandInRequestLogEntry {
    const retryHeader = Number.parseInt(String(req.headers["x-stainless-retry-count"]), 10);
    const entry: StandInRequestLogEntry = {
      seq: ++this.logged,
      at,
      method,
      route,
      outcome: undefined,
      injected: undefined,
      retryAfterSeconds: undefined,
      sdkRetryCount: Number.isNaN(retryHeader) ? undefined : retryHeader,
      transcriptStart: undefined,
    };
    this.log.push(entry);
    if (this.log.length > MAX_LOGGED_REQUESTS) this.log.shift();
    return entry;
  }

  private async reply(
    req: IncomingMessage,
    method: string,
    url: URL,
    matched: { route: Route; id: string } | null,
    entry: StandInRequestLogEntry,
  ): Promise<Reply | "timeout"> {
    if (!this.authorised(req)) {
      this.counters.unauthorized++;
      return unauthorisedReply(req);
    }
    // Chat completions are read up front: failures can match their transcript, and the log
    // names it. A body that cannot be read is answered by the route as before.
    let body: PrereadBody | undefined;
    let transcript: string | undefined;
    if (matched?.route.pattern === "/v1/chat/completions") {
      body = await readBody(req).then(
        (buffer) => ({ buffer }),
        (error: unknown) => ({ error }),
      );
      transcript = "buffer" in body ? transcriptOfBody(body.buffer) : undefined;
      entry.transcriptStart = transcript?.slice(0, LOGGED_TRANSCRIPT_CHARS);
    }
    const injected = this.injectFailure(entry, transcript);
    if (injected !== null) return injected;
    if (!matched) {
      return {
        status: 404,
        json: errorBody(`Invalid URL (${method} ${url.pathname})`, "invalid_request_error"),
      };
    }
    try {
      return await matched.route.handle({
        req,
        id: matched.id,
        query: url.searchParams,
        ...(body ? { body } : {}),
      });
    } catch (error) {
      if (error instanceof HttpError) return error.reply;
      return { status: 500, json: serverErrorBody() };
    }
  }

  private authorised(req: IncomingMessage): boolean {
    return this.apiKey === undefined || req.headers.authorization === `Bearer ${this.apiKey}`;
  }

  private count(route: string): void {
    this.counters.totalRequests++;
    this.counters.requests[route] = (this.counters.requests[route] ?? 0) + 1;
  }

  private retryAfterSeconds(): number {
    return this.behaviour.failures?.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS;
  }

  /** failNext first, then a failRequestsMatching rule, then one seeded draw against the rates. */
  private injectFailure(entry: StandInRequestLogEntry, transcript?: string): InjectedFailure {
    if (this.failNext && this.failNext.count > 0) {
      this.failNext.count--;
      return this.inject(entry, this.failNext.status, this.failNext.retryAfterSeconds);
    }
    const rule =
      transcript === undefined
        ? undefined
        : this.behaviour.failRequestsMatching.find((r) => transcript.includes(r.text));
    if (rule) return this.inject(entry, rule.failure, this.retryAfterSeconds());
    const failures = this.behaviour.failures;
    if (!failures) return null;
    const draw = this.random();
    const rate429 = failures.rate429 ?? 0;
    const rate500 = failures.rate500 ?? 0;
    if (draw < rate429) return this.inject(entry, 429, this.retryAfterSeconds());
    if (draw < rate429 + rate500) return this.inject(entry, 500, 0);
    if (draw < rate429 + rate500 + (failures.timeoutRate ?? 0)) {
      return this.inject(entry, "timeout", 0);
    }
    return null;
  }

  private inject(
    entry: StandInRequestLogEntry,
    failure: InjectedFailureKind,
    retryAfterSeconds: number,
  ): Reply | "timeout" {
    entry.injected = failure;
    if (failure === "timeout") {
      this.counters.injected.timeouts++;
      return "timeout";
    }
    if (failure === 429) {
      this.counters.injected.rateLimited++;
      entry.retryAfterSeconds = retryAfterSeconds;
      return rateLimitReply(retryAfterSeconds);
    }
    this.counters.injected.serverErrors++;
    return { status: 500, json: serverErrorBody() };
  }

  // --- chat completions ---

  private async chatCompletions({ req, body }: RouteContext): Promise<Reply> {
    const outcome = runChatCompletion(await readJson(req, body), this.behaviour);
    if (outcome.status === 200) this.counters.chatCompletions++;
    return { status: outcome.status, json: outcome.body };
  }

  // --- files ---

  private async uploadFile({ req }: RouteContext): Promise<Reply> {
    const form = await readForm(req);
    const file = form.get("file");
    const purpose = form.get("purpose");
    if (!(file instanceof Blob)) {
      throw badRequest("Missing required parameter: 'file'.", "file", "missing_required_parameter");
    }
    if (typeof purpose !== "string" || !FILE_PURPOSES.has(purpose)) {
      throw badRequest(
        `Invalid value for 'purpose': expected one of ${[...FILE_PURPOSES].join(", ")}.`,
        "purpose",
        "invalid_value",
      );
    }
    const filename = "name" in file && typeof file.name === "string" ? file.name : "upload";
    const content = Buffer.from(await file.arrayBuffer());
    return { status: 200, json: this.storeFile(content, filename, purpose as FileWire["purpose"]) };
  }

  private storeFile(content: Buffer, filename: string, purpose: FileWire["purpose"]): FileWire {
    const object: FileWire = {
      id: `file-${randomId(22)}`,
      object: "file",
      bytes: content.length,
      created_at: seconds(Date.now()),
      expires_at: null,
      filename,
      purpose,
      status: "processed",
      status_details: null,
    };
    this.files.set(object.id, { object, content });
    this.counters.filesStored++;
    return object;
  }

  private file(id: string): StoredFile {
    const stored = this.files.get(id);
    if (!stored) throw notFound(`No such File object: ${id}`);
    return stored;
  }

  private listFiles({ query }: RouteContext): Reply {
    const purpose = query.get("purpose");
    const files = [...this.files.values()]
      .map((stored) => stored.object)
      .filter((file) => purpose === null || file.purpose === purpose);
    const ordered = query.get("order") === "asc" ? files : files.reverse();
    return { status: 200, json: cursorPage(ordered, query) };
  }

  private deleteFile({ id }: RouteContext): Reply {
    this.file(id);
    this.files.delete(id);
    return { status: 200, json: { id, object: "file", deleted: true } };
  }

  private fileContent({ id }: RouteContext): Reply {
    return { status: 200, bytes: this.file(id).content, contentType: "application/octet-stream" };
  }

  // --- batches ---

  private async createBatch({ req }: RouteContext): Promise<Reply> {
    const body = await readJson(req);
    if (!isRecord(body)) throw badRequest("The request body must be a JSON object.");
    const { input_file_id: inputFileId, endpoint, completion_window: window } = body;
    if (typeof inputFileId !== "string" || inputFileId === "") {
      throw badRequest(
        "Missing required parameter: 'input_file_id'.",
        "input_file_id",
        "missing_required_parameter",
      );
    }
    if (endpoint !== "/v1/chat/completions") {
      throw badRequest(
        "The stand-in only supports the endpoint /v1/chat/completions.",
        "endpoint",
        "invalid_value",
      );
    }
    if (window !== "24h") {
      throw badRequest(
        "Invalid 'completion_window': only '24h' is supported.",
        "completion_window",
        "invalid_value",
      );
    }
    const metadata = parseMetadata(body.metadata);
    const input = this.files.get(inputFileId);
    if (!input) {
      throw badRequest(`No file found with id '${inputFileId}'.`, "input_file_id", "invalid_value");
    }
    if (input.object.purpose !== "batch") {
      throw badRequest(
        "The input file must have purpose 'batch'.",
        "input_file_id",
        "invalid_value",
      );
    }
    const batch = this.newBatch(input, endpoint, window, metadata);
    this.batches.set(batch.id, batch);
    this.counters.batchesCreated++;
    return { status: 200, json: this.observe(batch) };
  }

  private newBatch(
    input: StoredFile,
    endpoint: string,
    completionWindow: string,
    metadata: Record<string, string> | null,
  ): BatchRecord {
    const text = input.content.toString("utf8");
    const { lines, errors } = parseBatchInput(text, endpoint);
    const behaviour = this.behaviour;
    const runs = errors.length === 0 && behaviour.batchOutcome !== "failed";
    const results = runs ? lines.map((line) => runBatchLine(line, behaviour)) : [];
    return {
      id: `batch_${randomId(24)}`,
      createdAtMs: Date.now(),
      inputFileId: input.object.id,
      endpoint,
      completionWindow,
      metadata,
      timings: { ...behaviour.batch },
      outcome: behaviour.batchOutcome,
      validationErrors: errors,
      results: deterministicShuffle(results, hashString(text)),
      cancelRequestedAtMs: null,
      settled: null,
    };
  }

  private batch(id: string): BatchRecord {
    const batch = this.batches.get(id);
    if (!batch) throw notFound(`No batch found with id '${id}'.`, "batch_id");
    return batch;
  }

  private retrieveBatch({ id }: RouteContext): Reply {
    return { status: 200, json: this.observe(this.batch(id)) };
  }

  private listBatches({ query }: RouteContext): Reply {
    const newestFirst = [...this.batches.values()].reverse().map((batch) => this.observe(batch));
    return { status: 200, json: cursorPage(newestFirst, query) };
  }

  private cancelBatch({ id }: RouteContext): Reply {
    const batch = this.batch(id);
    const now = Date.now();
    const status = timelineAt(batch, now).status;
    if (batch.cancelRequestedAtMs === null) {
      if (!CANCELLABLE_STATUSES.has(status)) {
        throw badRequest(`Cannot cancel a batch with status '${status}'.`, null, "invalid_state");
      }
      batch.cancelRequestedAtMs = now;
    }
    return { status: 200, json: this.observe(batch) };
  }

  /** The batch as of now; writes its output files the first time it is seen finished. */
  private observe(batch: BatchRecord): BatchObject {
    const timeline = timelineAt(batch, Date.now());
    if (TERMINAL_STATUSES.has(timeline.status) && batch.settled === null) {
      this.settle(batch, timeline);
    }
    return batchObject(batch, timeline);
  }

  private settle(batch: BatchRecord, timeline: Timeline): void {
    const executed = batch.results.slice(0, timeline.executed);
    const output = executed.filter(isSuccess).map(writtenLine);
    const errors = executed.filter((result) => !isSuccess(result)).map(writtenLine);
    if (timeline.status === "expired") {
      errors.push(...batch.results.slice(timeline.executed).map(expiredLine).map(jsonLine));
    }
    const store = (lines: string[], kind: string) =>
      lines.length === 0
        ? null
        : this.storeFile(Buffer.from(lines.join("")), `${batch.id}_${kind}.jsonl`, "batch_output")
            .id;
    batch.settled = { outputFileId: store(output, "output"), errorFileId: store(errors, "error") };
    this.countSettled(timeline.status);
  }

  private countSettled(status: Batch["status"]): void {
    if (status === "completed") this.counters.batchesCompleted++;
    if (status === "failed") this.counters.batchesFailed++;
    if (status === "expired") this.counters.batchesExpired++;
    if (status === "cancelled") this.counters.batchesCancelled++;
  }
}

function emptyStats(): StandInStats {
  return {
    requests: {},
    totalRequests: 0,
    unauthorized: 0,
    chatCompletions: 0,
    injected: { rateLimited: 0, serverErrors: 0, timeouts: 0 },
    batchesCreated: 0,
    batchesCompleted: 0,
    batchesFailed: 0,
    batchesExpired: 0,
    batchesCancelled: 0,
    filesStored: 0,
  };
}

function unauthorisedReply(req: IncomingMessage): Reply {
  const message = req.headers.authorization
    ? "Incorrect API key provided. " +
      "You can find your API key at https://platform.openai.com/account/api-keys."
    : "You didn't provide an API key. You need to provide your API key in an Authorization " +
      "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).";
  return {
    status: 401,
    json: errorBody(message, "invalid_request_error", null, "invalid_api_key"),
  };
}

function send(res: ServerResponse, reply: Reply, startedAt: number): void {
  if (res.destroyed || res.headersSent) return;
  const common = {
    "x-request-id": requestId(),
    "openai-version": "2020-10-01",
    "openai-processing-ms": String(Date.now() - startedAt),
  };
  if ("bytes" in reply) {
    res.writeHead(reply.status, { ...common, "content-type": reply.contentType });
    res.end(reply.bytes);
    return;
  }
  const body = JSON.stringify(reply.json);
  res.writeHead(reply.status, {
    ...common,
    ...reply.headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Hung ("timeout") requests never finish on their own, so sockets are destroyed, not drained. */
function closeServer(server: Server, standIn: StandIn): Promise<void> {
  standIn.closing.abort();
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeAllConnections();
  });
}

/** close() may be called more than once (e.g. by a test and its cleanup hook). */
function once(action: () => Promise<void>): () => Promise<void> {
  let result: Promise<void> | undefined;
  return () => {
    result ??= action();
    return result;
  };
}
