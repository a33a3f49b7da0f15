/**
 * Everything one running stand-in holds, shared by its middleware and routes: the current
 * behaviour and how `configure` changes it, the fault injector, the file and batch stores, the
 * request log, and the signal that ends pending sleeps and hung requests on close. Also the Hono
 * environment type: what the request pipeline hands the routes in `c.var`.
 */

import { setMaxListeners } from "node:events";
import type { IncomingMessage } from "node:http";
import { BatchStore } from "./batch-store.ts";
import { type Behaviour, DEFAULT_BEHAVIOUR, patchBehaviour } from "./behaviour.ts";
import { FaultInjector } from "./fault-injection.ts";
import { FileStore } from "./file-store.ts";
import { RequestLog } from "./request-log.ts";
import type { StandInBehaviour, StandInRequestLogEntry } from "./types.ts";

/** A request body read before routing (chat completions, to match and log them). */
export type PrereadBody = { buffer: Buffer } | { error: unknown };

export interface StandInEnv {
  /** What @hono/node-server passes as c.env; absent when the app is called directly. */
  Bindings: { incoming?: IncomingMessage };
  Variables: {
    /** The matched route, e.g. "POST /v1/chat/completions", or "unmatched". */
    route: string;
    /** Arrival time, for the log and openai-processing-ms. */
    startedAt: number;
    entry: StandInRequestLogEntry;
    /** Chat completions only: the body, read before fault injection. */
    chatBody: PrereadBody | undefined;
    /** Chat completions only: the transcript, when the body is a valid request. */
    transcript: string | undefined;
    /** Set when the request is left without an answer (a hung request, or closing). */
    unanswered: boolean;
  };
}

export class StandInState {
  private current: Behaviour = DEFAULT_BEHAVIOUR;
  readonly faults = new FaultInjector();
  readonly log = new RequestLog();
  readonly files = new FileStore(this.log.counters);
  readonly batches = new BatchStore(this.files, this.log.counters);
  /** Aborted by close() so pending latency sleeps and hung requests end at once. */
  readonly closing = new AbortController();

  constructor(
    /** When set, requests must carry `Authorization: Bearer <apiKey>`. */
    readonly apiKey: string | undefined,
    initial: StandInBehaviour,
  ) {
    // Every request sleeping out its latency listens on this one signal; hundreds is normal.
    setMaxListeners(0, this.closing.signal);
    this.configure(initial);
  }

  get behaviour(): Behaviour {
    return this.current;
  }

  configure(patch: StandInBehaviour): void {
    FaultInjector.validate(patch);
    this.current = patchBehaviour(this.current, patch);
    this.faults.configure(patch, this.current);
  }
}
