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
 *
 * The exported types live in types.ts (re-exported here); the behaviour knobs, the chat "model",
 * the batch timeline, batch JSONL and wire objects, cursor pages, ids and the fault-injection
 * decisions have their own modules.
 */

import { setMaxListeners } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { Batch } from "openai/resources/batches";
import {
  expiredLine,
  isSuccess,
  jsonLine,
  parseBatchInput,
  runBatchLine,
  writtenLine,
} from "./batch-jsonl.ts";
import { type BatchRecord, batchObject } from "./batch-object.ts";
import {
  CANCELLABLE_STATUSES,
  TERMINAL_STATUSES,
  type Timeline,
  timelineAt,
} from "./batch-timeline.ts";
import { type Behaviour, DEFAULT_BEHAVIOUR, patchBehaviour } from "./behaviour.ts";
import { runChatCompletion, transcriptOfBody } from "./chat-completion.ts";
import { cursorPage } from "./cursor-page.ts";
import {
  badRequest,
  bodyTooLarge,
  errorBody,
  HttpError,
  notFound,
  serverErrorBody,
} from "./errors.ts";
import { FaultInjector, rateLimitHeaders, rateLimitMessage } from "./fault-injection.ts";
import { isRecord } from "./json-values.ts";
import { deterministicShuffle, hashString, randomId, requestId, seconds } from "./random.ts";
import type {
  BatchObject,
  FileWire,
  OpenAIStandIn,
  StandInBehaviour,
  StandInOptions,
  StandInRequestLogEntry,
  StandInStats,
} from "./types.ts";

export type {
  BatchObject,
  BatchOutcome,
  BatchOutputLine,
  BatchTimings,
  ErrorBody,
  FailNext,
  FailRequestsMatching,
  FailureInjection,
  FileWire,
  InjectedFailureKind,
  MalformedOutputKind,
  OpenAIStandIn,
  StandInBehaviour,
  StandInOptions,
  StandInRequestLogEntry,
  StandInStats,
} from "./types.ts";

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
const MAX_BODY_BYTES = 64 * 1024 * 1024;
/** The request log is a bounded window, so a long-running dev stand-in does not grow forever. */
const MAX_LOGGED_REQUESTS = 10_000;
const LOGGED_TRANSCRIPT_CHARS = 200;

// ---------------------------------------------------------------------------------------------
// Errors and replies
// ---------------------------------------------------------------------------------------------

type Reply =
  | { status: number; json: unknown; headers?: Record<string, string> }
  | { status: number; bytes: Buffer; contentType: string };

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
    if (size > MAX_BODY_BYTES) throw bodyTooLarge();
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
  private readonly faults = new FaultInjector();
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
    FaultInjector.validate(patch);
    this.behaviour = patchBehaviour(this.behaviour, patch);
    this.faults.configure(patch, this.behaviour);
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
      if (error instanceof HttpError) return { status: error.status, json: error.body };
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

  /** Applies the injector's decision: counts it, logs it and builds its answer. */
  private injectFailure(entry: StandInRequestLogEntry, transcript?: string): InjectedFailure {
    const failure = this.faults.decide(this.behaviour, transcript);
    if (failure === null) return null;
    entry.injected = failure.kind;
    if (failure.kind === "timeout") {
      this.counters.injected.timeouts++;
      return "timeout";
    }
    if (failure.kind === 429) {
      this.counters.injected.rateLimited++;
      entry.retryAfterSeconds = failure.retryAfterSeconds;
      const message = rateLimitMessage(failure.retryAfterSeconds);
      return {
        status: 429,
        json: errorBody(message, "requests", null, "rate_limit_exceeded"),
        headers: rateLimitHeaders(failure.retryAfterSeconds),
      };
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
