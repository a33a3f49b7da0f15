import type { Prisma } from "../adapters/db/generated/prisma/client.ts";
import type { FinishedRunOutcome } from "../domain/run-outcome.ts";
import { qualifiedName } from "../domain/scheduler-id.ts";
import type { ActivityDeps } from "./deps.ts";

/** How a run ended: the single list is domain/run-outcome.ts. */
export type RunOutcome = FinishedRunOutcome;

export interface RunStart {
  schedulerId: string;
  scheduleId: string;
  workflowId: string;
  runId: string;
  /** The schedule's nominal time for this run, when started by a schedule. */
  scheduledAt?: string | undefined;
  startedAt: string;
}

export interface RunFinish {
  workflowId: string;
  runId: string;
  outcome: RunOutcome;
  finishedAt: string;
  counts?: unknown;
  error?: string | undefined;
  /** Workflow executions the run took; absent in runs recorded before continue-as-new. */
  executions?: number | undefined;
}

export interface RunProgress {
  workflowId: string;
  runId: string;
  counts: unknown;
  executions: number;
}

export interface UpstreamQuery {
  /** Scheduler type of the feeding stage, e.g. "csv-import". */
  scheduler: string;
  region?: string | undefined;
}

const STALE_RUN_MS = 24 * 60 * 60_000;

/** The scheduler run table, written by each run itself. Every call is idempotent. */
export function createRunRecordActivities({ db }: ActivityDeps) {
  async function recordRunStarted(run: RunStart): Promise<void> {
    await db.schedulerRun.upsert({
      where: { workflowId_runId: { workflowId: run.workflowId, runId: run.runId } },
      create: {
        schedulerId: run.schedulerId,
        scheduleId: run.scheduleId,
        workflowId: run.workflowId,
        runId: run.runId,
        scheduledAt: run.scheduledAt ? new Date(run.scheduledAt) : null,
        startedAt: new Date(run.startedAt),
      },
      update: {},
    });
  }

  async function recordRunFinished(run: RunFinish): Promise<void> {
    const existing = await db.schedulerRun.findUnique({
      where: { workflowId_runId: { workflowId: run.workflowId, runId: run.runId } },
      select: { startedAt: true },
    });
    if (!existing) throw new Error(`no run record for ${run.workflowId}/${run.runId}`);
    const finishedAt = new Date(run.finishedAt);
    await db.schedulerRun.update({
      where: { workflowId_runId: { workflowId: run.workflowId, runId: run.runId } },
      data: {
        outcome: run.outcome,
        finishedAt,
        durationMs: Math.max(0, finishedAt.getTime() - existing.startedAt.getTime()),
        counts: (run.counts ?? undefined) as Prisma.InputJsonValue | undefined,
        error: run.error ?? null,
        ...(run.executions ? { executions: run.executions } : {}),
      },
    });
  }

  /** A run that continues as new: its totals so far, readable while it still runs. */
  async function recordRunProgress(run: RunProgress): Promise<void> {
    await db.schedulerRun.update({
      where: { workflowId_runId: { workflowId: run.workflowId, runId: run.runId } },
      data: {
        counts: (run.counts ?? undefined) as Prisma.InputJsonValue | undefined,
        executions: run.executions,
      },
    });
  }

  /**
   * Whether a run of another stage of this region is in progress: a draining run whose source is
   * empty keeps looking while the stage that feeds it still works. A RUNNING record older than
   * a day is a run that died unrecorded, not work in progress.
   */
  async function upstreamRunInProgress(input: UpstreamQuery): Promise<boolean> {
    const run = await db.schedulerRun.findFirst({
      where: {
        scheduleId: qualifiedName(input.scheduler, input.region),
        outcome: "RUNNING",
        startedAt: { gte: new Date(Date.now() - STALE_RUN_MS) },
      },
      select: { id: true },
    });
    return run !== null;
  }

  return { recordRunStarted, recordRunFinished, recordRunProgress, upstreamRunInProgress };
}
