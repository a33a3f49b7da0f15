/**
 * Fault injection: which requests fail instead of being answered, and how. One decision per
 * request, in this order: `failNext` (the next n requests, any route), then a
 * `failRequestsMatching` rule (chat completions whose transcript contains the text), then one
 * draw of the seeded generator against the 429/500/timeout rates, so runs repeat exactly.
 * A 429 carries OpenAI's body and rate-limit headers with `retry-after`; a "timeout" is never
 * answered and hangs until the client gives up or the stand-in closes. Applies to every
 * request that passed the API-key check, unknown routes included.
 */

import type { MiddlewareHandler } from "hono";
import type { Behaviour } from "./behaviour.ts";
import { errorBody, serverErrorBody } from "./errors.ts";
import { seededRandom } from "./random.ts";
import type { StandInEnv, StandInState } from "./state.ts";
import type { FailNext, InjectedFailureKind, StandInBehaviour } from "./types.ts";

const DEFAULT_RETRY_AFTER_SECONDS = 1;

export interface InjectedFailure {
  kind: InjectedFailureKind;
  /** Sent as `retry-after` with a 429; 0 otherwise. */
  retryAfterSeconds: number;
}

function retryAfterSeconds(behaviour: Behaviour): number {
  return behaviour.failures?.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS;
}

/** The failure decisions and the state they consume (failNext's countdown, the generator). */
export class FaultInjector {
  private failNext: Required<FailNext> | undefined;
  private random: () => number = seededRandom(1);

  /** Rejects a bad failNext before anything else is applied. */
  static validate(patch: StandInBehaviour): void {
    const next = patch.failNext;
    if (next && !(Number.isInteger(next.count) && next.count >= 0)) {
      throw new RangeError("failNext.count must be a non-negative integer");
    }
  }

  /** Applies the fault keys of a patch, given the behaviour it produced. */
  configure(patch: StandInBehaviour, behaviour: Behaviour): void {
    if (Object.hasOwn(patch, "failures")) this.random = seededRandom(patch.failures?.seed ?? 1);
    if (Object.hasOwn(patch, "failNext")) {
      const next = patch.failNext;
      this.failNext = next && {
        count: next.count,
        status: next.status,
        retryAfterSeconds: next.retryAfterSeconds ?? retryAfterSeconds(behaviour),
      };
    }
  }

  /** failNext first, then a failRequestsMatching rule, then one seeded draw against the rates. */
  decide(behaviour: Behaviour, transcript: string | undefined): InjectedFailure | null {
    if (this.failNext && this.failNext.count > 0) {
      this.failNext.count--;
      return { kind: this.failNext.status, retryAfterSeconds: this.failNext.retryAfterSeconds };
    }
    const rule =
      transcript === undefined
        ? undefined
        : behaviour.failRequestsMatching.find((r) => transcript.includes(r.text));
    if (rule) return { kind: rule.failure, retryAfterSeconds: retryAfterSeconds(behaviour) };
    const failures = behaviour.failures;
    if (!failures) return null;
    const draw = this.random();
    const rate429 = failures.rate429 ?? 0;
    const rate500 = failures.rate500 ?? 0;
    if (draw < rate429) return { kind: 429, retryAfterSeconds: retryAfterSeconds(behaviour) };
    if (draw < rate429 + rate500) return { kind: 500, retryAfterSeconds: 0 };
    if (draw < rate429 + rate500 + (failures.timeoutRate ?? 0)) {
      return { kind: "timeout", retryAfterSeconds: 0 };
    }
    return null;
  }
}

function rateLimitHeaders(retryAfter: number): Record<string, string> {
  return {
    "retry-after": String(retryAfter),
    "x-ratelimit-limit-requests": "500",
    "x-ratelimit-remaining-requests": "0",
    "x-ratelimit-reset-requests": `${retryAfter}s`,
    "x-ratelimit-limit-tokens": "200000",
    "x-ratelimit-remaining-tokens": "199000",
    "x-ratelimit-reset-tokens": "300ms",
  };
}

function rateLimitMessage(retryAfter: number): string {
  return (
    "Rate limit reached for requests per min (RPM): Limit 500, Used 500, Requested 1. " +
    `Please try again in ${retryAfter}s. ` +
    "Visit https://platform.openai.com/account/rate-limits to learn more."
  );
}

/** Resolves when any of the signals aborts (the client went away, or the stand-in closes). */
function untilAborted(signals: AbortSignal[]): Promise<void> {
  const signal = AbortSignal.any(signals);
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true }),
  );
}

/**
 * Answers the request with an injected failure when the injector decides so; otherwise passes
 * it on. Chat completions have been read already, so a rule can match their transcript.
 */
export function injectFaults(state: StandInState): MiddlewareHandler<StandInEnv> {
  return async (c, next) => {
    const failure = state.faults.decide(state.behaviour, c.get("transcript"));
    if (failure === null) return next();
    const entry = c.get("entry");
    const counters = state.log.counters;
    entry.injected = failure.kind;
    if (failure.kind === "timeout") {
      counters.injected.timeouts++;
      entry.outcome = "timeout";
      c.set("unanswered", true);
      await untilAborted([state.closing.signal, c.req.raw.signal]);
      return c.body(null);
    }
    if (failure.kind === 429) {
      counters.injected.rateLimited++;
      entry.retryAfterSeconds = failure.retryAfterSeconds;
      const body = errorBody(
        rateLimitMessage(failure.retryAfterSeconds),
        "requests",
        null,
        "rate_limit_exceeded",
      );
      return c.json(body, 429, rateLimitHeaders(failure.retryAfterSeconds));
    }
    counters.injected.serverErrors++;
    return c.json(serverErrorBody(), 500);
  };
}
