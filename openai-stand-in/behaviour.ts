/**
 * The stand-in's current behaviour (latency, batch timings and outcome, which lines or answers
 * break, failure injection settings) with every default filled in, and how a `configure` patch
 * is merged into it and validated. Kept apart from the server so the rules for "a key present
 * replaces, undefined restores the default" live in one place.
 */

import type {
  BatchOutcome,
  BatchTimings,
  FailRequestsMatching,
  FailureInjection,
  MalformedOutputKind,
  StandInBehaviour,
} from "./types.ts";

export interface Behaviour {
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

export const DEFAULT_BEHAVIOUR: Behaviour = {
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
export function patchBehaviour(current: Behaviour, patch: StandInBehaviour): Behaviour {
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
