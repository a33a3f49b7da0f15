/**
 * Local stand-in for the part of OpenAI's HTTP API that LiveDash uses: chat completions with a
 * JSON-schema response format, files (upload, metadata, content, list, delete) and the Batch
 * API (create, retrieve, list, cancel). Used by `npm run dev` without an OPENAI_API_KEY, by
 * tests and by the benchmarks, always through the real `openai` SDK, so every body and header
 * follows the wire format that SDK parses (see node_modules/openai/src/client.ts).
 *
 * This module is the entry point callers import: startOpenAIStandIn serves the Hono app of
 * app.ts with @hono/node-server on a loopback address and returns the handle (url, configure,
 * stats, requestLog, loseBatch, loseFile, close). The pieces: request-pipeline.ts and
 * fault-injection.ts (what every request goes through), routes/ (one sub-app per resource),
 * chat-completion.ts (the deterministic "model": analyseTranscript), batch-timeline.ts (batch
 * states by wall-clock time, evaluated lazily, so no timers), batch-jsonl.ts, batch-object.ts,
 * batch-store.ts and file-store.ts (in-memory data), request-log.ts (stats and request log).
 */

import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createAdaptorServer } from "@hono/node-server";
import { createStandInApp } from "./app.ts";
import { StandInState } from "./state.ts";
import type { OpenAIStandIn, StandInOptions } from "./types.ts";

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

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "::1", "localhost"]);

export async function startOpenAIStandIn(options: StandInOptions = {}): Promise<OpenAIStandIn> {
  const host = options.host ?? "127.0.0.1";
  if (!LOOPBACK_HOSTS.has(host)) {
    throw new Error(`The OpenAI stand-in only binds to loopback addresses, not ${host}`);
  }
  const state = new StandInState(options.apiKey, options.behaviour ?? {});
  const app = createStandInApp(state);
  // overrideGlobalObjects: false keeps the global Request/Response of the process that embeds
  // the stand-in (tests, dev, benches) as they were; the old server did not touch them either.
  const server = createAdaptorServer({ fetch: app.fetch, overrideGlobalObjects: false }) as Server;
  const port = await listen(server, options.port ?? 0, host);
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}/v1`,
    port,
    configure: (patch) => state.configure(patch),
    stats: () => state.log.stats(),
    requestLog: () => state.log.log(),
    loseBatch: (batchId) => state.batches.lose(batchId),
    loseFile: (fileId) => state.files.delete(fileId),
    close: once(() => closeServer(server, state)),
  };
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
function closeServer(server: Server, state: StandInState): Promise<void> {
  state.closing.abort();
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
