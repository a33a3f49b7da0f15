import type { Client } from "@temporalio/client";
import type { Config } from "../adapters/config.ts";
import type { Database } from "../adapters/db/client.ts";
import type { Prisma } from "../adapters/db/generated/prisma/client.ts";
import type { Logger } from "../adapters/logger.ts";
import type { SchedulerDefinition } from "./scheduler-registry.ts";
import {
  allSchedulerStatuses,
  type SchedulerState,
  type SchedulerStatus,
  statusOptionsFor,
} from "./scheduler-status.ts";

/**
 * Webhook notifications (ALERT_WEBHOOK_URL) when a scheduler turns ERROR and when it recovers.
 *
 * Every API replica evaluates the schedulers' states on a timer, with the health check's own
 * derivation (control-plane/scheduler-state.ts). The last evaluated state of each schedule is one
 * SchedulerAlertState row; a replica that sees a different state moves the row with a
 * conditional UPDATE (WHERE state and changedAt = what it read), so exactly one replica wins
 * each transition and queues its message (AlertNotification) in the same transaction. A replica
 * whose status reads started before the row's last change leaves it alone: another replica
 * decided on fresher reads (otherwise a slow replica would flip a recovery back to ERROR).
 * Delivery is separate:
 * any replica claims a due message with a lease, POSTs it, and on failure schedules a retry
 * with doubling backoff, so a dead receiver or a dead replica loses nothing and never slows
 * the health endpoint. Messages of one schedule go out in order.
 */

export interface AlertMessage {
  /** Slack-compatible summary. */
  text: string;
  event: "scheduler.error" | "scheduler.recovered";
  schedulerId: string;
  scheduleId: string;
  region: string | null;
  from: string;
  to: SchedulerState;
  reason: string;
  timestamp: string;
  /** The scheduler in the admin API and on the dashboard. */
  url: string;
  dashboardUrl: string;
}

export interface AlertNotifierDeps {
  config: Config;
  client: Client;
  db: Database;
  log: Logger;
  definitions: () => SchedulerDefinition[];
}

export interface AlertNotifier {
  /** One evaluation and delivery round (the timer calls it; tests may too). */
  tick(): Promise<void>;
  stop(): Promise<void>;
}

/** State of a schedule never evaluated before: not ERROR, so a first ERROR is announced. */
const UNKNOWN = "UNKNOWN";
const DELIVERY_TIMEOUT_MS = 10_000;
const MAX_BACKOFF_MS = 15 * 60_000;
const PENDING_SCAN = 100;

export function alertMessage(
  def: SchedulerDefinition,
  from: string,
  status: SchedulerStatus,
  at: Date,
  publicUrl: string,
): AlertMessage {
  const error = status.status === "ERROR";
  const reason = status.reason ?? `the scheduler is ${status.status}`;
  const url = `${publicUrl}/api/admin/schedulers/${encodeURIComponent(def.id)}`;
  const text = error
    ? `LiveDash scheduler ${def.id} is ERROR (was ${from}): ${reason}. ${url}`
    : `LiveDash scheduler ${def.id} recovered: ${status.status} (was ${from}). ${url}`;
  return {
    text,
    event: error ? "scheduler.error" : "scheduler.recovered",
    schedulerId: def.id,
    scheduleId: def.scheduleId,
    region: def.region ?? null,
    from,
    to: status.status,
    reason,
    timestamp: at.toISOString(),
    url,
    dashboardUrl: `${publicUrl}/admin#scheduler-${encodeURIComponent(def.id)}`,
  };
}

export function startAlertNotifier(deps: AlertNotifierDeps): AlertNotifier {
  const { config, log } = deps;
  const intervalMs = config.alerts.evaluationIntervalMs;
  let running: Promise<void> | undefined;
  let stopped = false;

  const tick = (): Promise<void> => {
    running ??= round(deps)
      .catch((error: unknown) => log.warn({ err: error }, "alerts: evaluation round failed"))
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const timer = setInterval(() => {
    if (!stopped) void tick();
  }, intervalMs);
  timer.unref();
  return {
    tick,
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

async function round(deps: AlertNotifierDeps): Promise<void> {
  await evaluate(deps);
  await deliverDue(deps);
}

/** Moves each schedule's alert state to its current status; queues a message on crossings. */
async function evaluate({ config, client, db, log, definitions }: AlertNotifierDeps) {
  const defs = definitions();
  // A row another replica changed after this moment was decided on fresher reads than ours.
  const evaluatedAt = new Date();
  const statuses = await allSchedulerStatuses(statusOptionsFor(config, client, db), defs);
  for (const [i, status] of statuses.entries()) {
    const def = defs[i];
    // Without the database there is nothing to compare with, nor to record in.
    if (!def || status.unreachable === "database") continue;
    await db.schedulerAlertState.createMany({
      data: [
        {
          scheduleId: def.scheduleId,
          schedulerId: def.id,
          state: UNKNOWN,
          changedAt: new Date(0),
        },
      ],
      skipDuplicates: true,
    });
    const row = await db.schedulerAlertState.findUniqueOrThrow({
      where: { scheduleId: def.scheduleId },
    });
    if (row.state === status.status || row.changedAt > evaluatedAt) continue;
    const now = new Date();
    const crossing = (row.state === "ERROR") !== (status.status === "ERROR");
    const message = alertMessage(def, row.state, status, now, config.alerts.publicUrl);
    const queued = await db.$transaction(async (tx) => {
      // Compare-and-set on (state, changedAt): of replicas that read the same row, one wins.
      const claimed = await tx.schedulerAlertState.updateMany({
        where: { scheduleId: def.scheduleId, state: row.state, changedAt: row.changedAt },
        data: { state: status.status, reason: status.reason ?? null, changedAt: now },
      });
      if (claimed.count !== 1 || !crossing) return false;
      await tx.alertNotification.create({
        data: {
          scheduleId: def.scheduleId,
          payload: message as unknown as Prisma.InputJsonValue,
          nextAttemptAt: now,
        },
      });
      return true;
    });
    if (queued) {
      log.info(
        { scheduleId: def.scheduleId, from: row.state, to: status.status },
        "alerts: scheduler state changed, notification queued",
      );
    }
  }
}

/** Sends each schedule's oldest pending message when due, claimed with a lease. */
async function deliverDue({ config, db, log }: AlertNotifierDeps) {
  const url = config.alerts.webhookUrl;
  if (!url) return;
  const pending = await db.alertNotification.findMany({
    where: { deliveredAt: null, failedAt: null },
    orderBy: { createdAt: "asc" },
    take: PENDING_SCAN,
  });
  const seen = new Set<string>();
  for (const message of pending) {
    if (seen.has(message.scheduleId)) continue;
    seen.add(message.scheduleId);
    const now = new Date();
    if (message.nextAttemptAt > now) continue;
    if (message.leaseUntil && message.leaseUntil > now) continue;
    const claimed = await db.alertNotification.updateMany({
      where: {
        id: message.id,
        attempts: message.attempts,
        leaseUntil: message.leaseUntil,
        deliveredAt: null,
        failedAt: null,
      },
      data: { leaseUntil: new Date(now.getTime() + DELIVERY_TIMEOUT_MS * 2) },
    });
    if (claimed.count !== 1) continue;

    const attempts = message.attempts + 1;
    const failure = await post(url, message.payload);
    if (failure === undefined) {
      await db.alertNotification.update({
        where: { id: message.id },
        data: { attempts, deliveredAt: new Date(), leaseUntil: null, lastError: null },
      });
      continue;
    }
    const giveUp = attempts >= config.alerts.maxAttempts;
    const backoff = Math.min(
      MAX_BACKOFF_MS,
      config.alerts.evaluationIntervalMs * 2 ** (attempts - 1),
    );
    await db.alertNotification.update({
      where: { id: message.id },
      data: {
        attempts,
        leaseUntil: null,
        lastError: failure,
        nextAttemptAt: new Date(Date.now() + backoff),
        ...(giveUp ? { failedAt: new Date() } : {}),
      },
    });
    // The URL may hold a secret (Slack's does): log the failure, never the address.
    log.warn(
      { scheduleId: message.scheduleId, attempts, giveUp, error: failure },
      giveUp ? "alerts: webhook delivery given up" : "alerts: webhook delivery failed, will retry",
    );
  }
}

/** POSTs one message; undefined on a 2xx answer, else why not. */
async function post(url: string, payload: unknown): Promise<string | undefined> {
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(payload),
      redirect: "error",
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    await response.body?.cancel();
    return response.ok ? undefined : `HTTP ${response.status}`;
  } catch (error) {
    const cause = error instanceof Error ? (error.cause ?? error) : error;
    return cause instanceof Error ? cause.message : String(cause);
  }
}
