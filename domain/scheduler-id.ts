/**
 * The one scheduler-id pattern of the admin API and the dashboard: `csv-import`, or
 * `csv-import@us` when the API reports several regions (API_REGIONS).
 */
export const SCHEDULER_ID_SOURCE = "[a-z][a-z0-9-]{0,63}(@[a-z0-9][a-z0-9-]{0,30})?";
export const SCHEDULER_ID = new RegExp(`^${SCHEDULER_ID_SOURCE}$`);
export const SCHEDULER_ID_HINT = "expected a scheduler id like csv-import or csv-import@us";

export function isSchedulerId(value: string): boolean {
  return SCHEDULER_ID.test(value);
}

/** A kind of worker: one task queue, served by any number of replicas. */
export const WORKER_TYPES = [
  "csv-import",
  "import-processing",
  "session-processing",
  "batch-processing",
] as const;
export type WorkerType = (typeof WORKER_TYPES)[number];

export function isWorkerType(value: string): value is WorkerType {
  return (WORKER_TYPES as readonly string[]).includes(value);
}

/** Names carry the region so two regions share one namespace without touching each other. */
export function qualifiedName(base: string, region: string | undefined): string {
  return region ? `livedash-${base}-${region}` : `livedash-${base}`;
}
