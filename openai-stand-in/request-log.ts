/**
 * What the stand-in saw: the counters behind stats() and the bounded request log behind
 * requestLog(), where every request is written on arrival and its outcome filled in when it is
 * answered, so tests can check how often and how fast the SDK retried.
 */

import type { StandInRequestLogEntry, StandInStats } from "./types.ts";

/** The request log is a bounded window, so a long-running dev stand-in does not grow forever. */
const MAX_LOGGED_REQUESTS = 10_000;

export function emptyStats(): StandInStats {
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

export class RequestLog {
  /** Mutated in place by the modules that count something (stores, faults, routes). */
  readonly counters = emptyStats();
  private readonly entries: StandInRequestLogEntry[] = [];
  private logged = 0;

  /** Counts the request under its route and logs its arrival; the entry is filled in later. */
  arrive(
    at: number,
    method: string,
    route: string,
    retryCountHeader: string | undefined,
  ): StandInRequestLogEntry {
    this.counters.totalRequests++;
    this.counters.requests[route] = (this.counters.requests[route] ?? 0) + 1;
    const retryCount = Number.parseInt(String(retryCountHeader), 10);
    const entry: StandInRequestLogEntry = {
      seq: ++this.logged,
      at,
      method,
      route,
      outcome: undefined,
      injected: undefined,
      retryAfterSeconds: undefined,
      sdkRetryCount: Number.isNaN(retryCount) ? undefined : retryCount,
      transcriptStart: undefined,
    };
    this.entries.push(entry);
    if (this.entries.length > MAX_LOGGED_REQUESTS) this.entries.shift();
    return entry;
  }

  stats(): StandInStats {
    return structuredClone(this.counters);
  }

  log(): StandInRequestLogEntry[] {
    return structuredClone(this.entries);
  }
}
