import { randomBytes } from "node:crypto";
import type { Client } from "@temporalio/client";
import { createDatabase } from "../adapters/db/client.ts";
import { qualifiedName } from "../domain/scheduler-id.ts";
import { type OpenAIStandIn, startOpenAIStandIn } from "../openai-stand-in/server.ts";
import type { WorkerProcess } from "../test/support/processes.ts";
import {
  type AnalysisFigures,
  analysisFigures,
  ratePerSecond,
  seedAnalysisBacklog,
} from "./analysis-backlog.ts";
import {
  activityExecutions,
  connectClient,
  deleteSchedules,
  type TimedRun,
  triggerAndTime,
} from "./scheduler-runs.ts";
import { benchEnv } from "./services.ts";
import type { BenchContext } from "./support.ts";
import { startWorkerProcesses, stopWorkerProcesses, waitForPollers } from "./worker-processes.ts";

/**
 * An I/O-bound backlog: direct-mode analysis against a stand-in answering after LATENCY_MS.
 * Each worker process runs at most WORKER_CAPACITY model calls at once (ANALYSIS_MAX_CONCURRENT,
 * the analysis queue's slots per replica), and a run keeps IN_FLIGHT requests going
 * (RUN_MAX_IN_FLIGHT): one process is full, a second has the rest to take.
 */
const LATENCY_MS = 3_000;
const WORKER_CAPACITY = 50;
const IN_FLIGHT = 2 * WORKER_CAPACITY;
const BACKLOG = 1_200;
const TARGET = 1.7;
const STARTUP_TIMEOUT_MS = 120_000;

/** Analysis activities of a run per worker identity; retried ones with their failure reasons. */
async function activitySplit(client: Client, workflowId: string, runId: string) {
  const executions = await activityExecutions(client, workflowId, runId, "requestAnalysis");
  const byWorker: Record<string, number> = {};
  const reasons: Record<string, number> = {};
  for (const e of executions) {
    byWorker[e.identity] = (byWorker[e.identity] ?? 0) + 1;
    if (e.lastFailure) {
      const reason = e.lastFailure.slice(0, 120);
      reasons[reason] = (reasons[reason] ?? 0) + 1;
    }
  }
  return { byWorker, retried: executions.filter((e) => e.attempt > 1).length, reasons };
}

interface CaseResult {
  processes: number;
  run: TimedRun;
  figures: AnalysisFigures;
  rate: number;
  /** AIProcessingRequest rows beyond one per session. */
  duplicates: number;
  byWorker: Record<string, number>;
  retried: number;
  /** Why retried attempts' predecessors failed, with counts. */
  reasons: Record<string, number>;
  /** Chat completions the stand-in answered during the case. */
  modelCalls: number;
}

async function runCase(
  ctx: BenchContext,
  client: Client,
  standIn: OpenAIStandIn,
  processes: number,
): Promise<CaseResult> {
  const url = await ctx.services.freshDatabase(`scaling_${processes}`);
  const db = createDatabase(url, { poolSize: 2 });
  const region = `s${randomBytes(3).toString("hex")}`;
  const scheduleId = qualifiedName("session-processing", region);
  let workers: WorkerProcess[] = [];
  try {
    const company = await db.company.create({
      data: { name: `Scaling ${processes}`, region, csvUrl: "http://127.0.0.1:9/unused.csv" },
    });
    await seedAnalysisBacklog(db, { companyId: company.id, sessions: BACKLOG, prefix: "s" });
    const env = benchEnv(url, ctx.services.temporalAddress, region, {
      CSV_COMPANIES_FILTER: `region:${region}`,
      ANALYSIS_MODE: "direct",
      ANALYSIS_MAX_CONCURRENT: String(WORKER_CAPACITY),
      RUN_MAX_IN_FLIGHT: String(IN_FLIGHT),
      SESSION_PROCESSING_BATCH_SIZE: String(BACKLOG),
      OPENAI_BASE_URL: standIn.url,
      // Never a real key in a bench: the stand-in takes any.
      OPENAI_API_KEY: "",
      WORKER_SHUTDOWN_GRACE_MS: "5000",
    });
    workers = await startWorkerProcesses(`scaling-${processes}`, processes, env, [
      "--scheduler=session-processing",
    ]);
    // The model calls run on the analysis queue, which every session-processing process polls.
    await waitForPollers(client, qualifiedName("analysis", region), {
      kind: "activity",
      count: processes,
      timeoutMs: STARTUP_TIMEOUT_MS,
    });

    const callsBefore = standIn.stats().chatCompletions;
    const run = await triggerAndTime(
      client,
      db,
      scheduleId,
      Math.round((BACKLOG / (100_000 / LATENCY_MS)) * 3_000) + 60_000,
    );
    const modelCalls = standIn.stats().chatCompletions - callsBefore;
    const figures = await analysisFigures(db, company.id);
    const rate = ratePerSecond(figures.completed, run.startedAt, figures.lastCompletedAt);
    const { byWorker, retried, reasons } = await activitySplit(client, run.workflowId, run.runId);
    const result: CaseResult = {
      processes,
      run,
      figures,
      rate,
      duplicates: figures.requests - figures.requestedSessions,
      byWorker,
      retried,
      reasons,
      modelCalls,
    };
    const since = (at: Date | null) => (at ? `${at.getTime() - run.startedAt.getTime()} ms` : "-");
    ctx.log(
      `  ${processes} process(es): run ${run.outcome} ${run.ms} ms (requests queued at +${since(figures.firstRequestedAt)}, first answer +${since(figures.firstCompletedAt)}, last +${since(figures.lastCompletedAt)}), ${figures.completed}/${BACKLOG} completed, ${figures.failed} failed, ${rate.toFixed(1)} req/s; requests ${figures.requests} for ${figures.requestedSessions} sessions, ${modelCalls} model calls, AI_ANALYSIS completed ${figures.completedStages}; activities per worker ${JSON.stringify(byWorker)}, retried ${retried}${retried > 0 ? ` ${JSON.stringify(reasons)}` : ""}`,
    );
    return result;
  } finally {
    await stopWorkerProcesses(workers);
    await deleteSchedules(client, [scheduleId]);
    await db.$disconnect();
  }
}

/**
 * Horizontal scaling: the same backlog in a fresh database, once with one session-processing
 * worker process and once with two. Throughput and duplicates come from the database rows.
 */
export async function scalingBench(ctx: BenchContext): Promise<void> {
  // In this process, which only waits while the workers (child processes) run: its counters
  // show how many model calls the backlog cost.
  const standIn = await startOpenAIStandIn({ behaviour: { latencyMs: LATENCY_MS } });
  const temporal = await connectClient(ctx.services.temporalAddress);
  try {
    const one = await runCase(ctx, temporal.client, standIn, 1);
    const two = await runCase(ctx, temporal.client, standIn, 2);
    const ratio = two.rate / one.rate;
    const complete = (r: CaseResult) =>
      r.figures.completed === BACKLOG && r.figures.completedStages === BACKLOG;
    ctx.record({
      bench: "scaling",
      metric: `2 worker processes, ${BACKLOG} sessions, L=${LATENCY_MS} ms`,
      value: two.rate,
      unit: "req/s",
      baseline: "1 worker process, same backlog",
      baselineValue: one.rate,
      ratio,
      target: `>= ${TARGET}`,
      met: ratio >= TARGET && complete(one) && complete(two),
      note: `direct mode, RUN_MAX_IN_FLIGHT=${IN_FLIGHT}, ANALYSIS_MAX_CONCURRENT=${WORKER_CAPACITY} per process, fresh database per case; completed / (SchedulerRun.startedAt .. last completedAt); activities per worker: ${JSON.stringify(two.byWorker)}`,
    });
    for (const r of [one, two]) {
      ctx.record({
        bench: "scaling",
        metric: `duplicate analyses, ${r.processes} process(es)`,
        value: r.duplicates,
        unit: "rows",
        target: "0",
        met: r.duplicates === 0 && complete(r),
        note: `${r.figures.requests} AIProcessingRequest rows for ${r.figures.requestedSessions} sessions of ${BACKLOG}; ${r.figures.completed} completed, ${r.figures.failed} failed; AI_ANALYSIS COMPLETED on ${r.figures.completedStages}; ${r.figures.sessionQuestions} SessionQuestion rows`,
      });
      ctx.record({
        bench: "scaling",
        metric: `model calls beyond one per session, ${r.processes} process(es)`,
        value: r.modelCalls - r.figures.completed,
        unit: "calls",
        target: "0",
        met: r.modelCalls === r.figures.completed,
        note: `${r.modelCalls} chat completions answered by the stand-in for ${r.figures.completed} analysed sessions; ${r.retried} activity attempts past the first${r.retried > 0 ? ` (${JSON.stringify(r.reasons)})` : ""}`,
      });
    }
  } finally {
    await temporal.close();
    await standIn.close();
  }
}
