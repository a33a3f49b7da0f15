import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../adapters/db/client.ts";
import { Prisma } from "../adapters/db/generated/prisma/client.ts";
import { analyseTranscript } from "../openai-stand-in/analysis.ts";
import type { OpenAIStandIn } from "../openai-stand-in/server.ts";
import type { RunSummary } from "../workflows/run-record.ts";
import type { SessionProcessingCounts } from "../workflows/session-processing.ts";
import {
  type AnalysisServices,
  regionDeployment,
  startAnalysisServices,
  stopAnalysisServices,
} from "./support/analysis-deployments.ts";
import { startSchedulerRun, waitFor } from "./support/harness.ts";
import { keepHistory } from "./support/history-fixtures.ts";
import { seedAnalysableSession } from "./support/seed-sessions.ts";

/**
 * Direct-mode analysis requests that no run will finish (their run was terminated, or the
 * database was away for longer than the apply's retries) are adopted by a later run once they
 * are older than any run may hold one: a stored answer is applied with no model call, the rest
 * are analysed once (direct mode) or go back to the batch queue (batch mode). A younger request,
 * which a live run may still hold, is left alone.
 */

const LINES = ["User: How do I report sick leave?", "Assistant: Call your team lead."];
/** Older than the registry's stranded threshold (twice the 2-hour run timeout). */
const LONG_AGO = () => new Date(Date.now() - 5 * 3_600_000);

describe("analysis requests no run will finish", () => {
  let services: AnalysisServices;
  let db: Database;
  let openai: OpenAIStandIn;

  const deployment = (env: Record<string, string>) =>
    regionDeployment(services, { BATCH_MIN_REQUESTS: "1", ...env }, [
      "session-processing",
      "batch-processing",
    ]);

  const analysedStages = (companyId: string) =>
    db.sessionProcessingStatus.count({
      where: { stage: "AI_ANALYSIS", status: "COMPLETED", session: { companyId } },
    });

  beforeAll(async () => {
    services = await startAnalysisServices();
    ({ db, openai } = services);
  });

  afterAll(() => stopAnalysisServices(services));

  it("direct mode: after a run is terminated mid-analysis, the next run applies the stored answers without a model call and analyses the rest once", async () => {
    const { stack, company } = await deployment({
      ANALYSIS_MODE: "direct",
      ANALYSIS_MAX_CONCURRENT: "2",
    });
    const sessions = 6;
    for (let i = 0; i < sessions; i++) await seedAnalysableSession(db, company.id, LINES);
    // Slow answers: two calls in flight when the run is terminated, the rest not yet started.
    openai.configure({ latencyMs: 1_500 });
    const callsBefore = openai.stats().chatCompletions;

    // Injected: an operator terminates the run while its first model calls are in flight.
    const handle = await startSchedulerRun(stack, "session-processing");
    await waitFor(
      "the first model call",
      async () => (openai.stats().requests["POST /v1/chat/completions"] ?? 0) > 0,
    );
    await handle.terminate("operator stopped the run mid-analysis");
    // The calls in flight still end and store their answers (the activity does not know).
    await waitFor(
      "the in-flight calls to store their answers",
      async () =>
        (await db.aIProcessingRequest.count({
          where: { companyId: company.id, rawAnswer: { not: Prisma.DbNull } },
        })) > 0,
    );
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    openai.configure({ latencyMs: 0 });
    const stranded = await db.aIProcessingRequest.findMany({
      where: { companyId: company.id, processingStatus: "BATCHING_IN_PROGRESS" },
      select: { id: true, rawAnswer: true },
    });
    const answered = stranded.filter((r) => r.rawAnswer !== null).length;
    expect(stranded).toHaveLength(sessions);
    expect(answered).toBeGreaterThan(0);
    expect(answered).toBeLessThan(sessions);
    const callsAtTermination = openai.stats().chatCompletions - callsBefore;

    // A run now leaves them alone: a live run could still hold requests this young.
    const early = await stack.run<RunSummary<SessionProcessingCounts>>("session-processing");
    expect(early.result.counts).toMatchObject({ adopted: 0, queued: 0, analysed: 0 });
    expect(
      await db.aIProcessingRequest.count({
        where: { companyId: company.id, processingStatus: "BATCHING_IN_PROGRESS" },
      }),
    ).toBe(sessions);

    // Past the threshold, the next run adopts them all.
    await db.aIProcessingRequest.updateMany({
      where: { companyId: company.id },
      data: { claimedAt: LONG_AGO() },
    });
    const requestedAt = new Map(
      (await db.aIProcessingRequest.findMany({ where: { companyId: company.id } })).map((r) => [
        r.id,
        r.requestedAt.getTime(),
      ]),
    );
    const { result, workflowId } =
      await stack.run<RunSummary<SessionProcessingCounts>>("session-processing");
    await keepHistory(stack.client, workflowId, "sessionProcessingWorkflow-adopt-stranded");
    expect(result.outcome).toBe("SUCCEEDED");
    expect(result.counts).toMatchObject({
      adopted: sessions,
      queued: 0,
      analysed: sessions,
      failed: 0,
    });
    // One model call for each request that had no answer; none for the stored answers.
    expect(openai.stats().chatCompletions - callsBefore - callsAtTermination).toBe(
      sessions - answered,
    );
    const requests = await db.aIProcessingRequest.findMany({ where: { companyId: company.id } });
    expect(requests).toHaveLength(sessions);
    for (const request of requests) {
      expect(request.processingStatus).toBe("PROCESSING_COMPLETE");
      // Priced at the time it was requested, not at its adoption; one adoption counted.
      expect(request.requestedAt.getTime()).toBe(requestedAt.get(request.id));
      expect(request.retryCount).toBe(1);
    }
    expect(await analysedStages(company.id)).toBe(sessions);

    console.log(
      `FAULT-FIGURES stranded-direct requests=${sessions} withStoredAnswer=${answered} callsBeforeTermination=${callsAtTermination} adopted=${result.counts.adopted} analysed=${result.counts.analysed} callsOnAdoption=${openai.stats().chatCompletions - callsBefore - callsAtTermination}`,
    );
    // Adopted once: the following run finds nothing left.
    const after = await stack.run<RunSummary<SessionProcessingCounts>>("session-processing");
    expect(after.result.counts).toMatchObject({ adopted: 0, analysed: 0 });
  }, 120_000);

  it("batch mode: a stranded request without an answer goes back to the batch queue and is analysed in a batch; one with an answer is applied", async () => {
    const { stack, company } = await deployment({ ANALYSIS_MODE: "batch" });
    /** A request as a direct run leaves it: claimed, in progress, no batch. */
    const strandedRequest = async (claimedAt: Date, rawAnswer?: object, retryCount = 0) => {
      const sessionId = await seedAnalysableSession(db, company.id, LINES);
      await db.sessionProcessingStatus.updateMany({
        where: { sessionId, stage: "AI_ANALYSIS" },
        data: { status: "IN_PROGRESS", startedAt: claimedAt },
      });
      return db.aIProcessingRequest.create({
        data: {
          sessionId,
          companyId: company.id,
          model: "gpt-4o-mini",
          processingStatus: "BATCHING_IN_PROGRESS",
          requestedAt: claimedAt,
          claimedAt,
          retryCount,
          ...(rawAnswer ? { rawAnswer } : {}),
        },
      });
    };
    // The answer the model would have given, stored as a direct run stores it.
    const content = JSON.stringify(analyseTranscript(LINES.join("\n")));
    const unanswered = await strandedRequest(LONG_AGO());
    const answered = await strandedRequest(LONG_AGO(), {
      content,
      usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
    });
    const young = await strandedRequest(new Date(Date.now() - 3_600_000));
    // Adopted AI_MAX_RETRIES (3) times already: this adoption fails it for good.
    const exhausted = await strandedRequest(LONG_AGO(), undefined, 3);
    const callsBefore = openai.stats().chatCompletions;

    const { result } = await stack.run<RunSummary<SessionProcessingCounts>>("session-processing");
    expect(result.counts).toMatchObject({ mode: "batch", adopted: 3, analysed: 1, failed: 1 });
    const status = async (id: string) =>
      (await db.aIProcessingRequest.findUniqueOrThrow({ where: { id } })).processingStatus;
    expect(await status(answered.id)).toBe("PROCESSING_COMPLETE");
    expect(await status(unanswered.id)).toBe("PENDING_BATCHING");
    expect(await status(young.id)).toBe("BATCHING_IN_PROGRESS");
    expect(
      await db.aIProcessingRequest.findUniqueOrThrow({ where: { id: exhausted.id } }),
    ).toMatchObject({
      processingStatus: "PROCESSING_FAILED",
      errorMessage: expect.stringContaining("gave up after AI_MAX_RETRIES adoptions"),
    });

    await stack.run("batch-processing");
    await stack.settleBatches(company.id);
    expect(await status(unanswered.id)).toBe("PROCESSING_COMPLETE");
    expect(await status(young.id)).toBe("BATCHING_IN_PROGRESS");
    expect(await analysedStages(company.id)).toBe(2);
    expect(openai.stats().chatCompletions).toBe(callsBefore);
    // Only ACTIVE companies' requests are adopted, as only theirs are queued.
    await db.company.update({ where: { id: company.id }, data: { status: "SUSPENDED" } });
    const suspended = await strandedRequest(LONG_AGO());
    const idle = await stack.run<RunSummary<SessionProcessingCounts>>("session-processing");
    expect(idle.result.counts).toMatchObject({ adopted: 0 });
    expect(await status(suspended.id)).toBe("BATCHING_IN_PROGRESS");
  }, 120_000);
});
