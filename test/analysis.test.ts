import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../adapters/db/client.ts";
import { transcriptForModel } from "../domain/analysis.ts";
import { analyseTranscript } from "../openai-stand-in/analysis.ts";
import type { OpenAIStandIn } from "../openai-stand-in/server.ts";
import type { BatchCreationWorkflowInput } from "../workflows/batch-processing.ts";
import {
  type AnalysisServices,
  regionDeployment,
  startAnalysisServices,
  stopAnalysisServices,
} from "./support/analysis-deployments.ts";
import { seedAnalysableSession } from "./support/seed-sessions.ts";

/**
 * Session analysis against the OpenAI stand-in: direct mode, invalid model output, failed
 * batch lines, expired batches with bounded requeueing, and concurrent batch creation.
 * Sessions are seeded as import processing leaves them (transcript fetched, AI_ANALYSIS pending).
 */

const GOOD = [
  "User: How do I report sick leave?",
  "Assistant: Call your team lead before 08:00.",
  "User: Thanks, great!",
];

describe("session analysis", () => {
  let services: AnalysisServices;
  let db: Database;
  let openai: OpenAIStandIn;

  /** One deployment per test: its own region (schedules, task queues, companies), one database. */
  async function deployment(env: Record<string, string>) {
    const { stack, company } = await regionDeployment(
      services,
      { BATCH_MIN_REQUESTS: "1", ...env },
      ["session-processing", "batch-processing"],
    );
    return {
      company,
      defs: stack.defs,
      client: stack.client,
      run: (id: string) => stack.run(id),
      settleBatches: () => stack.settleBatches(company.id),
    };
  }

  const requestOf = (sessionId: string) =>
    db.aIProcessingRequest.findFirstOrThrow({
      where: { sessionId },
      orderBy: { requestedAt: "desc" },
    });
  const stage = (sessionId: string, name: "AI_ANALYSIS" | "QUESTION_EXTRACTION") =>
    db.sessionProcessingStatus.findFirstOrThrow({ where: { sessionId, stage: name } });

  beforeAll(async () => {
    services = await startAnalysisServices();
    ({ db, openai } = services);
  });

  afterAll(() => stopAnalysisServices(services));

  it("direct mode analyses each session with one chat completion; invalid output fails only that request", async () => {
    const { company, run } = await deployment({
      ANALYSIS_MODE: "direct",
      ANALYSIS_MAX_CONCURRENT: "2",
    });
    const good = await seedAnalysableSession(db, company.id, GOOD);
    const other = await seedAnalysableSession(db, company.id, [
      "User: Where can I get a new staff pass?",
      "Assistant: At the front desk.",
    ]);
    const broken = await seedAnalysableSession(db, company.id, [
      "User: MALFORMED-ANSWER please, can you help?",
    ]);
    openai.configure({
      malformedOutputMatching: "MALFORMED-ANSWER",
      failNext: { count: 1, status: 429, retryAfterSeconds: 0.2 },
    });
    const completionsBefore = openai.stats().chatCompletions;

    const { result } = await run("session-processing");
    expect(result.outcome).toBe("PARTIAL");
    expect(result.counts).toMatchObject({ mode: "direct", queued: 3, analysed: 2, failed: 1 });
    // The 429 was retried (honouring retry-after) and every request was answered.
    expect(openai.stats().chatCompletions - completionsBefore).toBe(3);
    expect(openai.stats().injected.rateLimited).toBeGreaterThanOrEqual(1);

    const session = await db.session.findUniqueOrThrow({
      where: { id: good },
      include: { messages: { orderBy: { order: "asc" } } },
    });
    const expected = analyseTranscript(transcriptForModel(session.messages));
    expect(session).toMatchObject({
      category: expected.category,
      sentiment: expected.sentiment,
      summary: expected.summary,
    });
    expect(await requestOf(good)).toMatchObject({
      processingStatus: "PROCESSING_COMPLETE",
      batchId: null,
      model: "gpt-4o-mini",
    });
    expect((await requestOf(other)).processingStatus).toBe("PROCESSING_COMPLETE");

    const failed = await requestOf(broken);
    expect(failed).toMatchObject({ processingStatus: "PROCESSING_FAILED", success: false });
    expect(failed.errorMessage).toContain("not valid JSON");
    expect(failed.promptTokens).toBeGreaterThan(0); // the call was paid for: its tokens are recorded
    expect(await stage(broken, "AI_ANALYSIS")).toMatchObject({
      status: "FAILED",
      errorMessage: failed.errorMessage,
    });
    expect(await db.aIBatchRequest.count({ where: { companyId: company.id } })).toBe(0);
    openai.configure({ malformedOutputMatching: undefined });
  });

  it("a failed line in a completed batch's error file fails that request; the others are applied", async () => {
    const { company, run, settleBatches } = await deployment({});
    const ok = await seedAnalysableSession(db, company.id, GOOD);
    const doomed = await seedAnalysableSession(db, company.id, [
      "User: FAIL-THIS-LINE what are my contract hours?",
    ]);
    openai.configure({ failLinesMatching: "FAIL-THIS-LINE" });

    expect((await run("session-processing")).result.counts).toMatchObject({
      mode: "batch",
      queued: 2,
    });
    expect((await run("batch-processing")).result.counts).toMatchObject({
      batchesCreated: 1,
      requestsBatched: 2,
    });
    await settleBatches();

    const batch = await db.aIBatchRequest.findFirstOrThrow({ where: { companyId: company.id } });
    expect(batch.status).toBe("PROCESSED");
    expect(batch.errorFileId).toMatch(/^file-/);
    expect(await requestOf(ok)).toMatchObject({
      processingStatus: "PROCESSING_COMPLETE",
      success: true,
    });
    const failed = await requestOf(doomed);
    expect(failed).toMatchObject({ processingStatus: "PROCESSING_FAILED", success: false });
    expect(failed.errorMessage).toContain("batch line failed (500)");
    expect(await stage(doomed, "AI_ANALYSIS")).toMatchObject({ status: "FAILED" });
    openai.configure({ failLinesMatching: undefined });
  });

  it("an expired batch keeps its finished lines, requeues the rest, and a request fails for good after its retries", async () => {
    const { company, run, settleBatches } = await deployment({ AI_MAX_RETRIES: "1" });
    const sessions = [
      await seedAnalysableSession(db, company.id, GOOD),
      await seedAnalysableSession(db, company.id, GOOD),
    ];
    openai.configure({ batchOutcome: "expired" });

    await run("session-processing");
    await run("batch-processing");
    await settleBatches();
    const afterFirst = await db.aIProcessingRequest.findMany({
      where: { sessionId: { in: sessions } },
    });
    // The stand-in's expired batch ran half its lines: one applied, one back in the queue.
    expect(afterFirst.map((r) => r.processingStatus).sort()).toEqual([
      "PENDING_BATCHING",
      "PROCESSING_COMPLETE",
    ]);
    const requeued = afterFirst.find((r) => r.processingStatus === "PENDING_BATCHING");
    expect(requeued).toMatchObject({ retryCount: 1, batchId: null });
    expect(requeued?.errorMessage).toContain("expired");

    await run("batch-processing");
    await settleBatches();
    const gaveUp = await db.aIProcessingRequest.findUniqueOrThrow({
      where: { id: requeued?.id ?? "" },
    });
    // A one-request batch that expires runs none of its lines; past the limit the request fails for good.
    expect(gaveUp).toMatchObject({ processingStatus: "PROCESSING_FAILED", retryCount: 2 });
    expect(gaveUp.errorMessage).toContain("gave up after 1 retries");
    expect(
      await db.aIBatchRequest.count({ where: { companyId: company.id, status: "FAILED" } }),
    ).toBe(2);
    openai.configure({ batchOutcome: "completed" });
  });

  it("two overlapping batch-creation runs never put one request in two batches", async () => {
    const { company, run, defs, client } = await deployment({});
    for (let i = 0; i < 10; i++) await seedAnalysableSession(db, company.id, GOOD);
    expect((await run("session-processing")).result.counts).toMatchObject({ queued: 10 });

    const def = defs["batch-processing"];
    if (!def) throw new Error("batch-processing is not registered");
    const input: BatchCreationWorkflowInput = {
      ...(def.workflowArgs[0] as BatchCreationWorkflowInput),
      maxRequests: 4,
    };
    // Started side by side, outside the schedule's SKIP policy, as two replicas' runs could be.
    const runs = await Promise.all(
      ["a", "b"].map((suffix) =>
        client.workflow.start("batchCreationWorkflow", {
          taskQueue: def.taskQueue,
          workflowId: `${def.scheduleId}-overlap-${suffix}-${randomBytes(3).toString("hex")}`,
          args: [input],
        }),
      ),
    );
    await Promise.all(runs.map((handle) => handle.result()));

    const batches = await db.aIBatchRequest.findMany({
      where: { companyId: company.id },
      include: { requests: true },
    });
    expect(batches).toHaveLength(2);
    for (const batch of batches) expect(batch.requests).toHaveLength(batch.requestCount);
    const claimed = batches.flatMap((b) => b.requests.map((r) => r.id));
    expect(new Set(claimed).size).toBe(claimed.length);
    expect(claimed).toHaveLength(8);
    expect(
      await db.aIProcessingRequest.count({
        where: { companyId: company.id, processingStatus: "PENDING_BATCHING" },
      }),
    ).toBe(2);
  });
});
