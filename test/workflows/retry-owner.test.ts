import { Context } from "@temporalio/activity";
import { ApplicationFailure } from "@temporalio/common";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CompanyImportFailure } from "../../activities/company-import-health.ts";
import type { CompanyImportResult, CompanyRef } from "../../activities/csv-import.ts";
import type { ClaimedImports } from "../../activities/import-claims.ts";
import type { ImportOutcome, TranscriptFailure } from "../../activities/import-processing.ts";
import { createActivities } from "../../activities/index.ts";
import type { Database } from "../../adapters/db/client.ts";
import { createOpenAIClient } from "../../adapters/openai.ts";
import {
  ANALYSIS_REJECTED,
  ANALYSIS_UNAVAILABLE,
  CSV_SOURCE_UNAVAILABLE,
  TRANSCRIPT_REJECTED,
  TRANSCRIPT_UNAVAILABLE,
} from "../../domain/failure-types.ts";
import {
  DIRECT_ANALYSIS_MAX_ATTEMPTS,
  IMPORT_ACTIVITY_MAX_ATTEMPTS,
  MAX_TRANSCRIPT_ATTEMPTS,
} from "../../domain/pipeline-limits.ts";
import { type OpenAIStandIn, startOpenAIStandIn } from "../../openai-stand-in/server.ts";
import type { CsvImportRunCounts } from "../../workflows/csv-import.ts";
import type { ImportProcessingCounts } from "../../workflows/import-processing.ts";
import type { RunSummary } from "../../workflows/run-record.ts";
import type { SessionProcessingCounts } from "../../workflows/session-processing.ts";
import { silentLog, testConfig, testDatabase } from "../support/harness.ts";
import { keepHistory } from "../support/history-fixtures.ts";
import { mockedActivityRuns } from "../support/mocked-run.ts";
import { seedAnalysableSession } from "../support/seed-sessions.ts";

/**
 * Retries have one owner, the workflow: an activity throws a typed failure; the workflow's retry
 * policy repeats it or not; once the policy is exhausted, the workflow records what the failure
 * means, once, through a small activity. The production bundle runs on a real worker against
 * the test run's dev server; activities are mocked (real ones where the database is the point).
 */
const runRecords = {
  async recordRunStarted() {},
  async recordRunProgress() {},
  async recordRunFinished() {},
  async upstreamRunInProgress() {
    return false;
  },
};
const limits = { deadlineMs: 120_000, window: 4 };
/** Retries wait 100 ms, not production's seconds: the same attempts, less waiting. */
const FAST_RETRY_MS = 100;

/** One direct-mode session-processing run of the production bundle with these activities. */
function directAnalysisRun(
  runs: ReturnType<typeof mockedActivityRuns>,
  scheduleId: string,
  activities: object,
) {
  return runs.run<RunSummary<SessionProcessingCounts>>(
    "sessionProcessingWorkflow",
    {
      schedulerId: "session-processing",
      scheduleId,
      batchSize: 10,
      mode: "direct",
      analysisRetryIntervalMs: FAST_RETRY_MS,
      ...limits,
    },
    { ...runRecords, ...activities },
  );
}

describe("a failure is final when the workflow's retry policy is exhausted, and recorded once", () => {
  const runs = mockedActivityRuns("retry-owner");

  it("csv-import: a company failing every attempt is recorded failed once; a success is not", async () => {
    const companies: CompanyRef[] = [
      { id: "c-bad", name: "Bad" },
      { id: "c-ok", name: "Ok" },
    ];
    const calls: Record<string, number> = {};
    const recorded: CompanyImportFailure[] = [];
    const { result, workflowId } = await runs.run<RunSummary<CsvImportRunCounts>>(
      "csvImportWorkflow",
      {
        schedulerId: "csv-import",
        scheduleId: "retry-owner-csv",
        batchSize: 10,
        fetchTimeoutMs: 10_000,
        heartbeatTimeoutMs: 10_000,
        retryIntervalMs: FAST_RETRY_MS,
        ...limits,
      },
      {
        ...runRecords,
        async countCsvImportCompanies() {
          return companies.length;
        },
        async listCsvImportCompanies(input: { afterId?: string }) {
          return input.afterId ? [] : companies;
        },
        async importCompanyCsv(companyId: string): Promise<CompanyImportResult> {
          calls[companyId] = (calls[companyId] ?? 0) + 1;
          if (companyId === "c-bad") {
            throw ApplicationFailure.create({
              type: CSV_SOURCE_UNAVAILABLE,
              message: "http://bad.example/x.csv: HTTP 503",
            });
          }
          return {
            companyId,
            companyName: "Ok",
            status: "imported",
            durationMs: 1,
            rowsRead: 1,
            inserted: 1,
            duplicates: 0,
            rejected: 0,
            rejections: [],
          };
        },
        async recordCompanyImportFailure(failure: CompanyImportFailure) {
          recorded.push(failure);
        },
      },
    );

    await keepHistory(runs.client(), workflowId, "csvImportWorkflow-final-failure");
    expect(calls).toEqual({ "c-bad": 3, "c-ok": 1 });
    expect(recorded).toEqual([
      { companyId: "c-bad", runId: workflowId, error: "http://bad.example/x.csv: HTTP 503" },
    ]);
    expect(result.counts).toMatchObject({ companies: 2, imported: 1, failed: 1 });
  }, 90_000);

  it("import-processing: a transcript failing every attempt is recorded once, a permanent one after one attempt", async () => {
    const pending = [
      { id: "i-transient", createdAt: new Date().toISOString() },
      { id: "i-permanent", createdAt: new Date().toISOString() },
      { id: "i-fine", createdAt: new Date().toISOString() },
    ];
    const calls: Record<string, number> = {};
    const recorded: TranscriptFailure[] = [];
    const { result, workflowId } = await runs.run<RunSummary<ImportProcessingCounts>>(
      "importProcessingWorkflow",
      {
        schedulerId: "import-processing",
        scheduleId: "retry-owner-import",
        batchSize: 10,
        timeoutMs: 10_000,
        retryIntervalMs: FAST_RETRY_MS,
        ...limits,
      },
      {
        ...runRecords,
        async releaseImportLeases() {},
        async claimPendingImports(): Promise<ClaimedImports> {
          return { imports: pending.splice(0) };
        },
        async processImport(importId: string): Promise<ImportOutcome> {
          calls[importId] = (calls[importId] ?? 0) + 1;
          if (importId === "i-transient") {
            throw ApplicationFailure.create({ type: TRANSCRIPT_UNAVAILABLE, message: "t: 503" });
          }
          if (importId === "i-permanent") {
            throw ApplicationFailure.create({
              type: TRANSCRIPT_REJECTED,
              message: "t: 404",
              nonRetryable: true,
            });
          }
          return { importId, status: "processed", transcript: "completed", messages: 2 };
        },
        async recordTranscriptFailure(failure: TranscriptFailure): Promise<ImportOutcome> {
          recorded.push(failure);
          return {
            importId: failure.importId,
            status: "processed",
            transcript: "failed",
            messages: 0,
            error: failure.error,
          };
        },
      },
    );

    await keepHistory(runs.client(), workflowId, "importProcessingWorkflow-transcript-failure");
    expect(calls).toEqual({
      "i-transient": IMPORT_ACTIVITY_MAX_ATTEMPTS,
      "i-permanent": 1,
      "i-fine": 1,
    });
    expect(recorded.sort((a, b) => a.importId.localeCompare(b.importId))).toEqual([
      {
        importId: "i-permanent",
        error: "t: 404",
        permanent: true,
        maxRuns: MAX_TRANSCRIPT_ATTEMPTS,
      },
      {
        importId: "i-transient",
        error: "t: 503",
        permanent: false,
        maxRuns: MAX_TRANSCRIPT_ATTEMPTS,
      },
    ]);
    expect(result.counts).toMatchObject({
      considered: 3,
      processed: 3,
      transcriptsFetched: 1,
      transcriptsFailed: 2,
      failed: 0,
    });
  }, 90_000);

  it("session-processing (direct): a model call failing every attempt fails its request once", async () => {
    const calls: Record<string, number> = {};
    const recorded: { requestId: string; error: string }[] = [];
    const applied: string[] = [];
    const { result, workflowId } = await directAnalysisRun(runs, "retry-owner-direct", {
      async queueSessionsForAnalysis() {
        const requestIds = calls.queued ? [] : ["r-429", "r-400"];
        calls.queued = 1;
        return { skippedNoMessages: 0, queued: requestIds.length, requestIds };
      },
      async requestAnalysis(requestId: string) {
        calls[requestId] = (calls[requestId] ?? 0) + 1;
        if (requestId === "r-400") {
          throw ApplicationFailure.create({
            type: ANALYSIS_REJECTED,
            message: "OpenAI request failed: 400 bad request",
            nonRetryable: true,
          });
        }
        throw ApplicationFailure.create({
          type: ANALYSIS_UNAVAILABLE,
          message: "OpenAI request failed: 429 slow down",
        });
      },
      async applyStoredAnalyses(requestIds: string[]) {
        applied.push(...requestIds);
        return { completed: requestIds.length, failed: 0, alreadyDone: 0, missing: [] };
      },
      async recordAnalysisFailure(failure: { requestId: string; error: string }) {
        recorded.push(failure);
        return "failed";
      },
    });

    await keepHistory(runs.client(), workflowId, "sessionProcessingWorkflow-direct-failure");
    expect(calls).toMatchObject({ "r-429": DIRECT_ANALYSIS_MAX_ATTEMPTS, "r-400": 1 });
    expect(applied).toEqual([]);
    expect(recorded.sort((a, b) => a.requestId.localeCompare(b.requestId))).toEqual([
      { requestId: "r-400", error: "OpenAI request failed: 400 bad request" },
      { requestId: "r-429", error: "OpenAI request failed: 429 slow down" },
    ]);
    // Recorded on the requests, so no failure escapes as a run error.
    expect(result.counts).toMatchObject({ queued: 2, analysed: 0, failed: 2, errors: [] });
  }, 90_000);
});

describe("direct analysis in two steps: a retry never pays the model twice", () => {
  const runs = mockedActivityRuns("two-step");
  let db: Database;
  let databaseUrl: string;
  let openai: OpenAIStandIn;

  beforeAll(async () => {
    openai = await startOpenAIStandIn();
    ({ db, url: databaseUrl } = await testDatabase());
  });
  afterAll(async () => {
    await openai?.close();
    await db?.$disconnect();
  });

  const seedSession = (companyId: string, i: number) =>
    seedAnalysableSession(
      db,
      companyId,
      [`User: How do I report sick leave? (${i})`, "Assistant: Call your team lead before 08:00."],
      `two-step-${i}`,
    );

  /** The production activities, against this file's database and the OpenAI stand-in. */
  const realActivities = () => {
    const config = testConfig(databaseUrl, { OPENAI_BASE_URL: openai.url });
    return createActivities({ db, log: silentLog, config, openai: createOpenAIClient(config) });
  };

  it("recordTranscriptFailure counts a failed run once, however often it runs; the last allowed run ends the import", async () => {
    const real = realActivities();
    const company = await db.company.create({
      data: { name: "Transcript Co", csvUrl: "http://127.0.0.1:9/unused.csv" },
    });
    /** An import whose transcript fetch is under way, a partial read already stored. */
    const seedImport = async (i: number, attempts: number) => {
      const imported = await db.sessionImport.create({
        data: {
          companyId: company.id,
          externalSessionId: `transcript-${i}`,
          startTimeRaw: "01.05.2025 10:00:00",
          endTimeRaw: "01.05.2025 10:05:00",
          status: "PENDING",
          attempts,
          session: {
            create: {
              companyId: company.id,
              startTime: new Date("2025-05-01T10:00:00Z"),
              endTime: new Date("2025-05-01T10:05:00Z"),
              messages: { create: [{ order: 0, role: "user", content: "half a transc" }] },
              processingStatuses: {
                create: [{ stage: "TRANSCRIPT_FETCH", status: "IN_PROGRESS" }],
              },
            },
          },
        },
        include: { session: true },
      });
      return imported;
    };
    const stateOf = async (importId: string) => {
      const row = await db.sessionImport.findUniqueOrThrow({
        where: { id: importId },
        include: { session: { include: { processingStatuses: true, messages: true } } },
      });
      return {
        status: row.status,
        attempts: row.attempts,
        error: row.errorMessage,
        stage: row.session?.processingStatuses[0]?.status,
        retryCount: row.session?.processingStatuses[0]?.retryCount,
        messages: row.session?.messages.length,
      };
    };

    const first = await seedImport(1, 0);
    const failure = { importId: first.id, error: "t: 503", permanent: false, maxRuns: 3 };
    const expected = {
      importId: first.id,
      status: "processed",
      transcript: "failed",
      messages: 0,
      error: "t: 503",
    };
    expect(await real.recordTranscriptFailure(failure)).toEqual(expected);
    // Its worker died after the commit: the retry changes nothing and reports the same.
    expect(await real.recordTranscriptFailure(failure)).toEqual(expected);
    expect(await stateOf(first.id)).toEqual({
      status: "PENDING",
      attempts: 1,
      error: "t: 503",
      stage: "FAILED",
      retryCount: 1,
      messages: 0,
    });

    const last = await seedImport(2, 2);
    await real.recordTranscriptFailure({ ...failure, importId: last.id });
    await real.recordTranscriptFailure({ ...failure, importId: last.id });
    expect(await stateOf(last.id)).toMatchObject({
      status: "PROCESSED",
      attempts: 3,
      stage: "FAILED",
      retryCount: 3,
      messages: 0,
    });
  }, 60_000);

  it("applies the answers of model calls that end together in one activity; a request whose answer is missing fails alone", async () => {
    const real = realActivities();
    const company = await db.company.create({
      data: { name: "Batched apply Co", csvUrl: "http://127.0.0.1:9/unused.csv" },
    });
    const sessions = await Promise.all([11, 12, 13, 14].map((i) => seedSession(company.id, i)));
    let calls = 0;
    let releaseCalls: () => void = () => undefined;
    const allCalled = new Promise<void>((resolve) => {
      releaseCalls = resolve;
    });
    const batches: string[][] = [];

    const { result } = await directAnalysisRun(runs, "batched-apply", {
      queueSessionsForAnalysis: real.queueSessionsForAnalysis,
      // Every call waits for the others, then they end together; the last one "loses" its
      // answer (reports it stored without storing it).
      async requestAnalysis(requestId: string) {
        const n = ++calls;
        if (n === sessions.length) releaseCalls();
        await allCalled;
        return n === sessions.length ? "stored" : real.requestAnalysis(requestId);
      },
      async applyStoredAnalyses(requestIds: string[]) {
        batches.push(requestIds);
        return real.applyStoredAnalyses(requestIds);
      },
      recordAnalysisFailure: real.recordAnalysisFailure,
    });

    // Each request applied once, in as few activities as the completions arrived in.
    expect(batches.flat()).toHaveLength(sessions.length);
    expect(new Set(batches.flat()).size).toBe(sessions.length);
    expect(batches.length).toBeLessThanOrEqual(sessions.length);
    expect(result.counts).toMatchObject({
      queued: 4,
      analysed: 3,
      failed: 1,
      errors: ["1 request(s) had no stored answer to apply"],
    });
    const requests = await db.aIProcessingRequest.findMany({
      where: { sessionId: { in: sessions } },
      select: { processingStatus: true, rawAnswer: true },
    });
    expect(requests.filter((r) => r.processingStatus === "PROCESSING_COMPLETE")).toHaveLength(3);
    expect(requests.filter((r) => r.rawAnswer === null)).toHaveLength(1);
    console.log(`BATCHED-APPLY batches=${batches.map((b) => b.length).join(",")}`);
  }, 90_000);

  it("stores the answer, and the retry of an attempt that died after storing it calls no model", async () => {
    const real = realActivities();
    const company = await db.company.create({
      data: { name: "Two-step Co", csvUrl: "http://127.0.0.1:9/unused.csv" },
    });
    const sessions = [await seedSession(company.id, 1), await seedSession(company.id, 2)];
    const completionsBefore = openai.stats().chatCompletions;
    const results: { attempt: number; result: string }[] = [];

    const { result, workflowId } = await directAnalysisRun(runs, "two-step", {
      queueSessionsForAnalysis: real.queueSessionsForAnalysis,
      // The first attempt's worker "dies" right after the answer was stored.
      async requestAnalysis(requestId: string) {
        const stored = await real.requestAnalysis(requestId);
        const { attempt } = Context.current().info;
        results.push({ attempt, result: stored });
        if (attempt === 1) throw new Error("worker died after storing the answer");
        return stored;
      },
      applyStoredAnalyses: real.applyStoredAnalyses,
      recordAnalysisFailure: real.recordAnalysisFailure,
    });

    await keepHistory(runs.client(), workflowId, "sessionProcessingWorkflow-two-step");
    expect(result.counts).toMatchObject({ queued: 2, analysed: 2, failed: 0 });
    // The stored answers are applied by applyStoredAnalyses (together when their calls ended
    // together), never one applyStoredAnalysis per request.
    const scheduled = (
      (await runs.client().workflow.getHandle(workflowId).fetchHistory()).events ?? []
    ).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name);
    expect(scheduled).not.toContain("applyStoredAnalysis");
    expect(scheduled.filter((name) => name === "applyStoredAnalyses").length).toBeGreaterThan(0);
    // One paid call per session; each retry found the stored answer.
    expect(openai.stats().chatCompletions - completionsBefore).toBe(2);
    expect(results.filter((r) => r.attempt === 1).map((r) => r.result)).toEqual([
      "stored",
      "stored",
    ]);
    expect(results.filter((r) => r.attempt === 2).map((r) => r.result)).toEqual([
      "already-stored",
      "already-stored",
    ]);
    const requests = await db.aIProcessingRequest.findMany({
      where: { sessionId: { in: sessions } },
    });
    expect(requests).toHaveLength(2);
    for (const request of requests) {
      expect(request).toMatchObject({ processingStatus: "PROCESSING_COMPLETE", success: true });
      expect(request.rawAnswer).toMatchObject({ content: expect.any(String) });
      expect(request.totalTokens).toBeGreaterThan(0);
    }

    // A request already ended is left alone: neither step does anything a second time.
    const [first] = requests;
    if (!first) throw new Error("no request");
    expect(await real.requestAnalysis(first.id)).toBe("already-done");
    expect(await real.applyStoredAnalysis(first.id)).toBe("already-done");
    expect(await real.applyStoredAnalyses([first.id])).toEqual({
      completed: 0,
      failed: 0,
      alreadyDone: 1,
      missing: [],
    });
    expect(openai.stats().chatCompletions - completionsBefore).toBe(2);
  }, 90_000);
});
