import type { Client } from "@temporalio/client";
import proto from "@temporalio/proto";
import { type RunProgressSnapshot, runProgressQuery } from "../workflows/progress.ts";
import { within } from "./schedule-facts.ts";

// CommonJS package: Node's ESM loader sees only its default export.
const { temporal } = proto;

/**
 * A running run's live progress for the admin API and the dashboard.
 *
 * Where it comes from, and why: the workflow answers a query with the drain's counters and its
 * totals so far (workflow memory, no write), and Temporal's pending-activity list (describe)
 * carries each activity's last heartbeat, in which a CSV import reports the rows it has read and
 * committed. Two Temporal reads per running run and request, whatever the number of companies or
 * rows, and nothing written per row or per item; any API replica gets the same answer. When no
 * worker answers the query (none polling, a deploy in progress), the run table's totals (written
 * at each continue-as-new) are shown instead, with `source: "run-record"`.
 */
export interface RunProgressView {
  /** `workflow`: the run's live counters; `run-record`: totals at the last hand-over. */
  source: "workflow" | "run-record";
  /** When the progress last changed: a counter in the workflow or an in-flight heartbeat. */
  updatedAt: string;
  executions: number;
  /** Items the run took (listed or claimed), finished, running as activities, and waiting. */
  items: { taken: number; done: number; inFlight: number; waiting: number } | null;
  /** csv-import: companies finished out of the ACTIVE companies the run visits. */
  companies: { done: number; total: number | null } | null;
  /** csv-import: rows read by finished companies plus those in flight (their last heartbeat). */
  rowsRead: number | null;
  /** The activities in flight (the first IN_FLIGHT_LISTED of them), as Temporal reports them. */
  inFlight: { count: number; activities: InFlightActivity[] };
  /** The run's totals so far, the shape of its recorded counts. */
  counts: unknown;
}

export interface InFlightActivity {
  activityType: string;
  activityId: string;
  state: string;
  attempt: number;
  lastHeartbeatAt: string | null;
  /** csv-import: rows this company's import has read and committed so far. */
  rowsRead: number | null;
  /** csv-import: the company being imported, from the heartbeat (null before its first). */
  companyId: string | null;
}

/** In-flight activities listed one by one; `count` is always the full number. */
const IN_FLIGHT_LISTED = 20;
/** Each Temporal read of one run's progress gets this long (the dashboard waits on it). */
export const PROGRESS_TIMEOUT_MS = 1_500;

export interface RunningRun {
  schedulerId: string;
  workflowId: string;
  executions: number;
  counts: unknown;
  updatedAt: Date;
}

export async function readRunProgress(
  client: Client,
  run: RunningRun,
  timeoutMs = PROGRESS_TIMEOUT_MS,
): Promise<RunProgressView> {
  // Without a run id the handle follows the chain to the execution running now.
  const handle = client.workflow.getHandle(run.workflowId);
  const deadline = Date.now() + timeoutMs;
  const call = <T>(fn: () => Promise<T>) =>
    within(client.withDeadline(deadline, fn), timeoutMs, "Temporal");
  // Describe first, then query: a query is answered on the workflow's state after every event
  // recorded before it, so an import that finished between the two reads is in the query's
  // totals and gone from its in-flight keys, and its heartbeat is left out (never counted twice).
  const description = await call(() => handle.describe()).catch(() => undefined);
  const snapshot = await call(() => handle.query(runProgressQuery)).catch(() => undefined);
  const pending = await inFlightActivities(client, description?.raw.pendingActivities ?? []);
  const heartbeats = pending
    .map((a) => a.lastHeartbeatAt)
    .filter((at): at is string => at !== null);
  const csvImport = run.schedulerId.split("@")[0] === "csv-import";

  const counts = snapshot ? snapshot.counts : run.counts;
  const finishedRows = csvImport ? numberAt(counts, "rowsRead") : null;
  const updatedAt = latest([
    snapshot ? snapshot.updatedAt : run.updatedAt.toISOString(),
    ...heartbeats,
  ]);
  return {
    source: snapshot ? "workflow" : "run-record",
    updatedAt,
    executions: snapshot?.executions ?? run.executions,
    items: snapshot ? snapshot.items : null,
    companies: csvImport ? companiesOf(snapshot, counts) : null,
    rowsRead: csvImport ? (finishedRows ?? 0) + inFlightRows(pending, snapshot) : null,
    inFlight: { count: pending.length, activities: pending.slice(0, IN_FLIGHT_LISTED) },
    counts,
  };
}

/**
 * Rows read by the imports still in flight: their last heartbeats, but only of companies the
 * workflow has not yet added to its totals (runs of workers from before the keys count all).
 */
function inFlightRows(
  pending: readonly InFlightActivity[],
  snapshot: RunProgressSnapshot | undefined,
): number {
  const keys = snapshot?.inFlightKeys ? new Set(snapshot.inFlightKeys) : undefined;
  return pending
    .filter((a) => !keys || a.companyId === null || keys.has(a.companyId))
    .reduce((sum, a) => sum + (a.rowsRead ?? 0), 0);
}

function companiesOf(
  snapshot: RunProgressSnapshot | undefined,
  counts: unknown,
): RunProgressView["companies"] {
  const done = numberAt(counts, "companies") ?? 0;
  return { done, total: snapshot?.total ?? null };
}

type PendingActivity = proto.temporal.api.workflow.v1.IPendingActivityInfo;

async function inFlightActivities(
  client: Client,
  pending: readonly PendingActivity[] | null | undefined,
): Promise<InFlightActivity[]> {
  // Record-keeping activities (the run table) are not the run's work.
  const work = (pending ?? []).filter((a) => !a.activityType?.name?.startsWith("recordRun"));
  return Promise.all(
    work.map(async (a) => {
      const details = await heartbeatDetails(client, a).catch(() => undefined);
      const state = temporal.api.enums.v1.PendingActivityState[a.state ?? 0] ?? "UNSPECIFIED";
      return {
        activityType: a.activityType?.name ?? "unknown",
        activityId: a.activityId ?? "",
        state: String(state).replace("PENDING_ACTIVITY_STATE_", ""),
        attempt: a.attempt ?? 1,
        lastHeartbeatAt: timestampToIso(a.lastHeartbeatTime),
        rowsRead: numberAt((details as { counts?: unknown } | undefined)?.counts, "rowsRead"),
        companyId: stringAt(details, "companyId"),
      };
    }),
  );
}

/** The first heartbeat detail of an activity, through the client's data converter. */
async function heartbeatDetails(client: Client, activity: PendingActivity): Promise<unknown> {
  const converter = client.options.loadedDataConverter;
  let payloads = activity.heartbeatDetails?.payloads ?? [];
  if (payloads.length === 0) return undefined;
  for (const codec of [...converter.payloadCodecs].reverse())
    payloads = await codec.decode(payloads);
  const first = payloads[0];
  return first ? converter.payloadConverter.fromPayload(first) : undefined;
}

function numberAt(value: unknown, key: string): number | null {
  if (typeof value !== "object" || value === null) return null;
  const found = (value as Record<string, unknown>)[key];
  return typeof found === "number" && Number.isFinite(found) ? found : null;
}

function timestampToIso(
  ts: { seconds?: unknown; nanos?: number | null } | null | undefined,
): string | null {
  if (!ts?.seconds) return null;
  const seconds = Number(ts.seconds);
  return new Date(seconds * 1000 + Math.floor((ts.nanos ?? 0) / 1e6)).toISOString();
}

function latest(times: string[]): string {
  return times.reduce((a, b) => (Date.parse(b) > Date.parse(a) ? b : a));
}

function stringAt(value: unknown, key: string): string | null {
  if (typeof value !== "object" || value === null) return null;
  const found = (value as Record<string, unknown>)[key];
  return typeof found === "string" ? found : null;
}
