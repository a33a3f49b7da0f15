import type { Logger } from "../adapters/logger.ts";

export interface DependencyState {
  ok: boolean;
  /** When the dependency last changed between reachable and unreachable. */
  since: string;
  lastError?: string;
}

export interface DependencyMonitor {
  status(): Record<string, DependencyState>;
  stop(): void;
}

/**
 * Probes what a worker needs to do any work (Temporal, PostgreSQL) on an interval. The SDK
 * retries polls forever while Temporal is away, and activities retry database errors, so
 * nothing else would tell an operator (or a readiness probe) that this worker is idle because
 * a dependency is down. Transitions are logged once each way.
 */
export function startDependencyMonitor(options: {
  checks: Record<string, () => Promise<unknown>>;
  log: Logger;
  intervalMs?: number;
  timeoutMs?: number;
}): DependencyMonitor {
  const intervalMs = options.intervalMs ?? 5_000;
  const timeoutMs = options.timeoutMs ?? 3_000;
  const started = new Date().toISOString();
  const states = new Map<string, DependencyState>(
    Object.keys(options.checks).map((name) => [name, { ok: true, since: started }]),
  );

  const probe = async (name: string, check: () => Promise<unknown>) => {
    let timer: NodeJS.Timeout | undefined;
    let error: string | undefined;
    try {
      await Promise.race([
        check(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
    } finally {
      clearTimeout(timer);
    }
    const previous = states.get(name);
    const ok = error === undefined;
    if (previous?.ok !== ok) {
      if (ok) options.log.info({ dependency: name }, "dependency reachable again");
      else options.log.warn({ dependency: name, error }, "dependency unreachable");
    }
    states.set(name, {
      ok,
      since: previous?.ok === ok ? previous.since : new Date().toISOString(),
      ...(error ? { lastError: error } : {}),
    });
  };

  let running = false;
  const round = async () => {
    if (running) return; // a slow round is still going; never pile probes up
    running = true;
    try {
      await Promise.all(Object.entries(options.checks).map(([name, check]) => probe(name, check)));
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void round(), intervalMs);
  timer.unref();
  void round();

  return {
    status: () => Object.fromEntries(states),
    stop: () => clearInterval(timer),
  };
}
