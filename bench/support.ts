/**
 * What every bench is handed (the run's services, its workflow bundle, where its results go) and
 * the in-process workers it starts on them.
 */

import type { Config } from "../adapters/config.ts";
import type { Database } from "../adapters/db/client.ts";
import { createLogger } from "../adapters/logger.ts";
import type { WorkerType } from "../domain/scheduler-id.ts";
import { type RunningWorkers, startWorkers } from "../workers/runtime.ts";
import type { Services } from "./services.ts";

export interface ResultRow {
  bench: string;
  metric: string;
  value: number;
  unit: string;
  baseline?: string;
  baselineValue?: number;
  /** value / baselineValue (or the inverse for lower-is-better, stated in `note`). */
  ratio?: number;
  target?: string;
  met?: boolean;
  note?: string;
}

export interface BenchContext {
  services: Services;
  workflowBundle: { code: string };
  large: boolean;
  log(line: string): void;
  record(row: ResultRow): void;
}

/** In-process workers of these types for a bench, on the run's shared workflow bundle. */
export function startBenchWorkers(
  ctx: BenchContext,
  config: Config,
  db: Database,
  types: readonly WorkerType[],
): Promise<RunningWorkers> {
  return startWorkers({
    config,
    db,
    log: createLogger("warn", "bench-worker"),
    types,
    workflowBundle: ctx.workflowBundle,
  });
}
