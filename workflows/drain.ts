import { sleep } from "@temporalio/workflow";
import type { RunTracker } from "./progress.ts";

/**
 * The draining loop every scheduled run uses: take pages of work while work is pending and keep
 * up to `window` items in flight, topping the window up as items finish (no barrier at the end
 * of a page). It stops taking new work when the source is empty and the stage feeding it idle,
 * when the run's deadline has passed (so the schedule's next run is not skipped), or when the
 * execution should continue as new (its history grew large); items already in flight always
 * finish first.
 *
 * Deterministic: it only awaits activities, timers and workflow time (`Date.now()` in workflow
 * code is the time of the current workflow task).
 */
export type DrainEnd = "empty" | "deadline" | "continue";

/** What one item's work asks of the loop: done, or try it again later in this run. */
export type ItemResult = "done" | { deferMs: number };

export interface DrainOptions<T> {
  /** The next page of work; an empty page means nothing is pending right now. */
  nextPage: () => Promise<T[]>;
  work: (item: T) => Promise<ItemResult>;
  /** Most items in flight at once: the run's own bound, far above one worker's slots. */
  window: number;
  /** Workflow time (ms) after which no new work is taken. */
  deadline: number;
  /** True when the execution should hand over to a fresh one (history size). */
  shouldContinue: () => boolean;
  /** Items handed back by an earlier execution of this run (deferred, not yet done). */
  carried?: T[];
  /**
   * Whether the stage feeding this one is still producing work (its run is in progress). While
   * it is, an empty source does not end the run: it looks again every `upstreamPollMs`, until
   * the deadline, so work flows on within seconds instead of waiting for the next schedule tick.
   */
  upstreamBusy?: () => Promise<boolean>;
  upstreamPollMs?: number;
  /** Live counters for the run's progress query (no effect on what the loop does). */
  tracker?: RunTracker;
}

export interface DrainResult<T> {
  end: DrainEnd;
  /** Items not started or deferred when the loop stopped early: the next execution's `carried`. */
  leftover: T[];
}

/** How often an idle run looks for work again while its upstream stage is still busy. */
export const UPSTREAM_POLL_MS = 5_000;

export async function drain<T>(options: DrainOptions<T>): Promise<DrainResult<T>> {
  const ready: T[] = [...(options.carried ?? [])];
  const deferred: { item: T; at: number }[] = [];
  const running = new Set<Promise<void>>();
  let sourceEmpty = false;
  let end: DrainEnd | undefined;
  const tracker = options.tracker;
  const track = () => {
    if (!tracker) return;
    tracker.inFlight = running.size;
    tracker.waiting = ready.length + deferred.length;
  };

  const start = (item: T) => {
    const task: Promise<void> = options.work(item).then((result) => {
      running.delete(task);
      if (result !== "done") deferred.push({ item, at: Date.now() + result.deferMs });
      else if (tracker) tracker.done += 1;
      track();
      tracker?.touch();
    });
    running.add(task);
  };

  for (;;) {
    if (end === undefined) {
      if (Date.now() >= options.deadline) end = "deadline";
      else if (options.shouldContinue()) end = "continue";
    }
    // Past the deadline no page is fetched and nothing deferred is retried, but items already
    // taken (claimed for this run) still run; a hand-over carries them to the next execution.
    const taking = end === undefined;
    const starting = end !== "continue";

    const now = Date.now();
    if (taking) {
      for (let i = deferred.length - 1; i >= 0; i--) {
        const entry = deferred[i];
        if (entry && entry.at <= now) {
          ready.unshift(entry.item);
          deferred.splice(i, 1);
        }
      }
    }
    if (starting)
      while (ready.length > 0 && running.size < options.window) start(ready.shift() as T);
    track();

    if (taking && ready.length === 0 && !sourceEmpty && running.size < options.window) {
      const page = await options.nextPage();
      if (page.length === 0) sourceEmpty = true;
      else ready.push(...page);
      if (tracker) {
        tracker.taken += page.length;
        tracker.touch();
      }
      track();
      continue;
    }

    if (running.size > 0) {
      // A deferred item waits at most until its time, even while others are still running.
      const nextAt = taking ? Math.min(...deferred.map((d) => d.at)) : Number.POSITIVE_INFINITY;
      await (Number.isFinite(nextAt)
        ? Promise.race([...running, sleep(Math.max(1, nextAt - now))])
        : Promise.race(running));
      // New work may have arrived while the last items ran: look once more before ending.
      if (running.size === 0 && ready.length === 0 && deferred.length === 0) sourceEmpty = false;
      continue;
    }
    if (taking && deferred.length > 0) {
      await sleep(Math.max(1, Math.min(...deferred.map((d) => d.at)) - now));
      continue;
    }
    if (taking && options.upstreamBusy && (await options.upstreamBusy())) {
      const poll = options.upstreamPollMs ?? UPSTREAM_POLL_MS;
      await sleep(Math.max(1, Math.min(poll, options.deadline - now)));
      sourceEmpty = false;
      continue;
    }
    if (!starting || ready.length === 0) {
      return { end: end ?? "empty", leftover: [...ready, ...deferred.map((d) => d.item)] };
    }
  }
}
