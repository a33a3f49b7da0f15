import type { Prisma } from "../adapters/db/generated/prisma/client.ts";
import type { RunProgressView } from "./run-progress.ts";

/** One run as the admin API shows it. */
export interface RunView {
  workflowId: string;
  runId: string;
  outcome: string;
  scheduledAt: string | null;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  counts: unknown;
  error: string | null;
  /** A RUNNING run's live progress (control-plane/run-progress.ts); absent for finished runs. */
  progress?: RunProgressView;
}

export function toRunView(run: {
  workflowId: string;
  runId: string;
  outcome: string;
  scheduledAt: Date | null;
  startedAt: Date;
  finishedAt: Date | null;
  durationMs: number | null;
  counts: Prisma.JsonValue;
  error: string | null;
}): RunView {
  return {
    workflowId: run.workflowId,
    runId: run.runId,
    outcome: run.outcome,
    scheduledAt: run.scheduledAt?.toISOString() ?? null,
    startedAt: run.startedAt.toISOString(),
    finishedAt: run.finishedAt?.toISOString() ?? null,
    durationMs: run.durationMs,
    counts: run.counts,
    error: run.error,
  };
}

/** Keyset cursor of the run history: start time and id of the last row of a page. */
export function encodeCursor(startedAt: Date, id: string): string {
  return Buffer.from(`${startedAt.toISOString()}|${id}`).toString("base64url");
}

/** The cursor's position, or undefined when it does not decode (the client's mistake). */
export function decodeCursor(cursor: string): { startedAt: Date; id: string } | undefined {
  const [at, id] = Buffer.from(cursor, "base64url").toString("utf8").split("|");
  const startedAt = new Date(at ?? "");
  if (!id || Number.isNaN(startedAt.getTime()) || !/^[0-9a-f-]{36}$/.test(id)) {
    return undefined;
  }
  return { startedAt, id };
}
