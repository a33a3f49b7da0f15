import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { ApplicationFailure } from "@temporalio/common";
import { SOURCE_HOST_BUSY } from "../domain/failure-types.ts";
import type { Database } from "./db/client.ts";

/**
 * A global limit of concurrent fetches per source host, shared by every worker replica through
 * PostgreSQL: a fetch holds one of the host's FETCH_MAX_PER_HOST slots as a lease, renewed while
 * it runs and given back when it ends; the lease of a worker that died expires by itself.
 * Hand-written on purpose: the slots must hold across processes and hosts, and PostgreSQL is the
 * one store every worker already shares (no extra service just for a semaphore).
 */
export interface HostLimiter {
  /** Waits for a slot of `host`; resolves with its release. Throws SourceHostBusyError. */
  acquire(host: string, signal?: AbortSignal): Promise<() => Promise<void>>;
}

export class SourceHostBusyError extends Error {
  override readonly name = SOURCE_HOST_BUSY;
  constructor(host: string, maxPerHost: number, waitedMs: number) {
    super(
      `${host} already serves ${maxPerHost} fetch(es) of this deployment (FETCH_MAX_PER_HOST); ` +
        `waited ${Math.round(waitedMs / 1000)} s for a slot`,
    );
  }
}

/** What an activity throws for it: the workflow defers the item instead of failing it. */
export function hostBusyFailure(error: SourceHostBusyError): ApplicationFailure {
  return ApplicationFailure.create({
    type: SOURCE_HOST_BUSY,
    message: error.message,
    nonRetryable: true,
  });
}

export interface HostLimiterOptions {
  db: Database;
  maxPerHost: number;
  /** How long acquire waits for a free slot before it gives up (FETCH_HOST_WAIT_MS). */
  waitMs: number;
  /**
   * Lease length; renewed every third of it while the fetch runs. Workers pass
   * ACTIVITY_HEARTBEAT_TIMEOUT_MS: the slots of a worker that died free up when the server
   * presumes its activities dead and retries them elsewhere.
   */
  leaseMs?: number;
}

const DEFAULT_LEASE_MS = 60_000;
const POLL_MIN_MS = 100;
const POLL_MAX_MS = 500;

export function createHostLimiter(options: HostLimiterOptions): HostLimiter {
  const { db, maxPerHost } = options;
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;

  /** Takes a random free (or expired) slot; undefined when all are held. */
  async function tryTake(host: string, holder: string): Promise<number | undefined> {
    const rows = await db.$queryRaw<{ slot: number }[]>`
      WITH free AS (
        SELECT s FROM generate_series(0, ${maxPerHost - 1}::int) s
        WHERE NOT EXISTS (
          SELECT 1 FROM "FetchHostSlot" f
          WHERE f.host = ${host} AND f.slot = s AND f."expiresAt" > now())
        ORDER BY random() LIMIT 1
      )
      INSERT INTO "FetchHostSlot" (host, slot, holder, "expiresAt")
      SELECT ${host}, s, ${holder}, now() + ${leaseMs} * interval '1 millisecond' FROM free
      ON CONFLICT (host, slot) DO UPDATE
        SET holder = EXCLUDED.holder, "expiresAt" = EXCLUDED."expiresAt"
        WHERE "FetchHostSlot"."expiresAt" <= now()
      RETURNING slot`;
    return rows[0]?.slot;
  }

  return {
    async acquire(host, signal) {
      const holder = randomUUID();
      const started = Date.now();
      for (;;) {
        signal?.throwIfAborted();
        const slot = await tryTake(host, holder);
        if (slot !== undefined) return holdSlot(db, host, slot, holder, leaseMs);
        const waited = Date.now() - started;
        if (waited >= options.waitMs) throw new SourceHostBusyError(host, maxPerHost, waited);
        const pause = POLL_MIN_MS + Math.random() * (POLL_MAX_MS - POLL_MIN_MS);
        await sleep(Math.min(pause, Math.max(1, options.waitMs - waited)), undefined, { signal });
      }
    },
  };
}

/** Keeps the lease alive until released; the release runs once, however often it is called. */
function holdSlot(
  db: Database,
  host: string,
  slot: number,
  holder: string,
  leaseMs: number,
): () => Promise<void> {
  const renew = setInterval(() => {
    db.$executeRaw`
      UPDATE "FetchHostSlot" SET "expiresAt" = now() + ${leaseMs} * interval '1 millisecond'
      WHERE host = ${host} AND slot = ${slot} AND holder = ${holder}`.catch(() => undefined);
  }, leaseMs / 3);
  renew.unref();
  let released: Promise<void> | undefined;
  return () => {
    released ??= (async () => {
      clearInterval(renew);
      // A failed delete only delays the slot until its lease expires.
      await db.$executeRaw`
        DELETE FROM "FetchHostSlot" WHERE host = ${host} AND slot = ${slot} AND holder = ${holder}`.catch(
        () => undefined,
      );
    })();
    return released;
  };
}
