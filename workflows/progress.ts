import { defineQuery } from "@temporalio/workflow";

/**
 * A running run's live progress, answered by the workflow itself (a query), so the API reads it
 * without any write: the drain's counters and the run's totals live in workflow memory already,
 * and the rows an activity has read so far are in its heartbeat details, which the API reads from
 * Temporal's pending-activity list (describe). Nothing is written per row or per item; the run
 * table keeps the totals written at each continue-as-new as the fallback when no worker answers.
 * A query costs a worker one cached workflow task and is never recorded in history, so adding it
 * does not change what a run replays.
 */
export interface RunProgressSnapshot {
  /** Executions so far (continue-as-new), this one included. */
  executions: number;
  /** Items taken by the run (listed or claimed), done, running as activities, and waiting. */
  items: { taken: number; done: number; inFlight: number; waiting: number };
  /** All items the run will visit, when known (csv-import: ACTIVE companies at the start). */
  total: number | null;
  /** True once the source was listed to its end (no page left to take). */
  listedAll: boolean;
  /** The run's totals so far (the same shape as its recorded counts). */
  counts: unknown;
  /**
   * csv-import: the companies whose import is in flight and not yet in `counts`. A pending
   * activity's heartbeat counts towards the progress only while its company is listed here, so
   * an import that finished between the API's two reads is never counted twice.
   */
  inFlightKeys?: string[] | undefined;
  /** Workflow time (ISO) the counters last changed. */
  updatedAt: string;
}

export const runProgressQuery = defineQuery<RunProgressSnapshot>("runProgress");

/** The counters one execution keeps; a run carries taken / done across continue-as-new. */
export class RunTracker {
  taken: number;
  done: number;
  inFlight = 0;
  waiting = 0;
  total: number | null = null;
  listedAll = false;
  counts: unknown = null;
  /** Keys of the items in flight whose results are not yet in `counts` (null: not kept). */
  inFlightKeys: Set<string> | null = null;
  updatedAt: number;

  constructor(carried: { taken?: number | undefined; done?: number | undefined } | undefined) {
    this.taken = carried?.taken ?? 0;
    this.done = carried?.done ?? 0;
    this.updatedAt = Date.now();
  }

  /** Workflow time: the time of the current workflow task, deterministic. */
  touch(): void {
    this.updatedAt = Date.now();
  }

  snapshot(executions: number): RunProgressSnapshot {
    return {
      executions,
      items: {
        taken: this.taken,
        done: this.done,
        inFlight: this.inFlight,
        waiting: this.waiting,
      },
      total: this.total,
      listedAll: this.listedAll,
      counts: this.counts,
      ...(this.inFlightKeys ? { inFlightKeys: [...this.inFlightKeys] } : {}),
      updatedAt: new Date(this.updatedAt).toISOString(),
    };
  }
}
