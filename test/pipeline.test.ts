import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../adapters/db/client.ts";
import { costEur, transcriptForModel, usageOf } from "../domain/analysis.ts";
import { WORKER_TYPES } from "../domain/scheduler-id.ts";
import { analyseTranscript } from "../openai-stand-in/analysis.ts";
import { type OpenAIStandIn, startOpenAIStandIn } from "../openai-stand-in/server.ts";
import {
  basicAuthOk,
  startHttpServer,
  startTestStack,
  type TestHttpServer,
  type TestStack,
} from "./support/harness.ts";

const USER = "acme-export";
const PASSWORD = "pipeline-Secret-9";

const TRANSCRIPTS: Record<string, string> = {
  "s-login": [
    "[30.04.2025 11:41:48] User: Hello",
    "[30.04.2025 11:41:50] Assistant: Hi! How can I help?",
    "[30.04.2025 11:42:10] User: I cannot log in to my account, can you reset my password?",
    "[30.04.2025 11:42:30] ASSISTANT: I sent you a reset link.",
    "a line without any role",
    "[30.04.2025 11:43:00] user: Thanks, that works great!",
  ].join("\n"),
  "s-leave": [
    "[01.05.2025 09:00:00] User: How many vacation days do I have left?",
    "[01.05.2025 09:00:20] Assistant: You have 12 vacation days left.",
    "[01.05.2025 09:01:00] User: This is terrible, I was promised more. I want to talk to a manager.",
  ].join("\r\n"),
  "s-empty": "",
};

function csvRow(id: string, start: string, transcript: string | null): string {
  return [
    id,
    start,
    start,
    "10.0.0.1",
    "NL",
    "english",
    "3",
    "happy",
    "no",
    "no",
    transcript ?? "",
    "2.5",
    "100",
    "0.0001",
    "Cat",
    "Hi",
  ].join(",");
}

describe("the whole pipeline through triggered schedules (batch mode)", () => {
  let stack: TestStack;
  let db: Database;
  let source: TestHttpServer;
  let openai: OpenAIStandIn;
  let hangTranscripts = false;

  const run = (id: string) => stack.run(id);
  const settleBatches = () => stack.settleBatches();

  beforeAll(async () => {
    openai = await startOpenAIStandIn({
      behaviour: { batch: { validatingMs: 50, inProgressMs: 200, finalizingMs: 50 } },
    });
    source = await startHttpServer(async (req, res) => {
      if (!basicAuthOk(req, USER, PASSWORD)) {
        res.writeHead(401).end();
        return;
      }
      const url = req.url ?? "";
      if (url === "/export.csv") {
        const base = source.url;
        res
          .writeHead(200, { "content-type": "text/csv" })
          .end(
            [
              csvRow("s-login", "30.04.2025 11:41:48", `${base}/t/s-login.txt`),
              csvRow("s-leave", "01.05.2025 09:00:00", `${base}/t/s-leave.txt`),
              csvRow("s-nourl", "01.05.2025 10:00:00", null),
              csvRow("s-baddate", "31.02.2025 10:00:00", `${base}/t/s-login.txt`),
              csvRow("s-404", "01.05.2025 11:00:00", `${base}/t/missing.txt`),
              csvRow("s-empty", "01.05.2025 12:00:00", `${base}/t/s-empty.txt`),
            ].join("\n"),
          );
        return;
      }
      if (url === "/slow.csv") {
        res
          .writeHead(200)
          .end(csvRow("s-slow", "02.05.2025 08:00:00", `${source.url}/t/s-slow.txt`));
        return;
      }
      const id = /^\/t\/(.+)\.txt$/.exec(url)?.[1] ?? "";
      if (id === "s-slow" && hangTranscripts) return; // never answers: the fetch must time out
      const transcript = TRANSCRIPTS[id];
      if (transcript === undefined) res.writeHead(404).end("no such transcript");
      else res.writeHead(200, { "content-type": "text/plain" }).end(transcript);
    });

    stack = await startTestStack({
      env: {
        OPENAI_BASE_URL: openai.url,
        BATCH_MIN_REQUESTS: "1",
        TRANSCRIPT_FETCH_TIMEOUT: "1000",
      },
    });
    db = stack.db;
    const acme = await db.company.create({
      data: {
        name: "Acme",
        csvUrl: `${source.url}/export.csv`,
        csvUsername: USER,
        csvPassword: PASSWORD,
      },
    });
    // Acme's default model is gpt-4o with a price of its own in the pricing table.
    const model = await db.aIModel.create({
      data: {
        name: "gpt-4o",
        provider: "openai",
        pricing: {
          create: {
            promptTokenCost: 0.000003,
            completionTokenCost: 0.000012,
            effectiveFrom: new Date("2024-01-01"),
          },
        },
      },
    });
    await db.companyAIModel.create({
      data: { companyId: acme.id, aiModelId: model.id, isDefault: true },
    });

    await stack.startWorkers(WORKER_TYPES);
  });

  afterAll(async () => {
    await stack?.close();
    await source?.close();
    await openai?.close();
  });

  it("takes a CSV to analysed sessions with costs and questions, each scheduler on its own task queue", async () => {
    expect(new Set(Object.values(stack.defs).map((d) => d.taskQueue)).size).toBe(4);

    expect((await run("csv-import")).result.counts).toMatchObject({ inserted: 6 });

    const processing = await run("import-processing");
    expect(processing.result.outcome).toBe("PARTIAL");
    expect(processing.result.counts).toMatchObject({
      considered: 6,
      processed: 5,
      failed: 1,
      transcriptsFetched: 3,
      transcriptsSkipped: 1,
      transcriptsFailed: 1,
    });

    // A bad date is a permanent failure: recorded with its reason, never retried.
    const bad = await db.sessionImport.findFirstOrThrow({
      where: { externalSessionId: "s-baddate" },
    });
    expect(bad.status).toBe("FAILED");
    expect(bad.errorMessage).toContain('unparseable date: "31.02.2025 10:00:00" is not a date');
    expect(await db.session.count({ where: { importId: bad.id } })).toBe(0);

    const stages = async (externalSessionId: string) => {
      const rows = await db.sessionProcessingStatus.findMany({
        where: { session: { import: { externalSessionId } } },
      });
      return Object.fromEntries(
        rows.map((r) => [r.stage, { status: r.status, error: r.errorMessage }]),
      );
    };
    expect(await stages("s-nourl")).toMatchObject({
      CSV_IMPORT: { status: "COMPLETED" },
      SESSION_CREATION: { status: "COMPLETED" },
      TRANSCRIPT_FETCH: { status: "SKIPPED", error: "no transcript URL" },
      AI_ANALYSIS: { status: "PENDING" },
    });
    expect((await stages("s-404")).TRANSCRIPT_FETCH).toMatchObject({
      status: "FAILED",
      error: expect.stringContaining("HTTP 404"),
    });

    // Messages in order, roles in any case, a line without a role kept as "unknown".
    const login = await db.session.findFirstOrThrow({
      where: { import: { externalSessionId: "s-login" } },
      include: { messages: { orderBy: { order: "asc" } } },
    });
    expect(login.startTime.toISOString()).toBe("2025-04-30T11:41:48.000Z");
    expect(login.messages.map((m) => [m.order, m.role])).toEqual([
      [0, "user"],
      [1, "assistant"],
      [2, "user"],
      [3, "assistant"],
      [4, "unknown"],
      [5, "user"],
    ]);
    expect(login.messages[2]?.timestamp?.toISOString()).toBe("2025-04-30T11:42:10.000Z");
    expect(login.messages[4]).toMatchObject({
      content: "a line without any role",
      timestamp: null,
    });

    const queued = await run("session-processing");
    // Sessions without messages are skipped, never left pending to block the queue.
    expect(queued.result.counts).toMatchObject({ mode: "batch", queued: 2, skippedNoMessages: 3 });
    expect((await stages("s-empty")).AI_ANALYSIS).toEqual({
      status: "SKIPPED",
      error: "no messages to analyse",
    });

    const created = await run("batch-processing");
    expect(created.result.counts).toMatchObject({ batchesCreated: 1, requestsBatched: 2 });
    await settleBatches();

    const batch = await db.aIBatchRequest.findFirstOrThrow();
    expect(batch).toMatchObject({ status: "PROCESSED", requestCount: 2 });
    expect(batch.openaiBatchId).toMatch(/^batch_/);
    expect(batch.inputFileId).toMatch(/^file-/);
    expect(batch.outputFileId).toMatch(/^file-/);

    for (const externalSessionId of ["s-login", "s-leave"]) {
      const session = await db.session.findFirstOrThrow({
        where: { import: { externalSessionId } },
        include: {
          messages: { orderBy: { order: "asc" } },
          questions: { orderBy: { order: "asc" }, include: { question: true } },
          aiRequests: true,
        },
      });
      const expected = analyseTranscript(transcriptForModel(session.messages));
      expect(session).toMatchObject({
        language: expected.language,
        sentiment: expected.sentiment,
        escalated: expected.escalated,
        forwardedHr: expected.forwarded_hr,
        category: expected.category,
        summary: expected.summary,
      });
      expect(session.questions.map((q) => q.question.content)).toEqual(expected.questions);

      const [request] = session.aiRequests;
      expect(request).toMatchObject({
        model: "gpt-4o",
        processingStatus: "PROCESSING_COMPLETE",
        success: true,
        batchId: batch.id,
      });
      const usage = usageOf({
        prompt_tokens: request?.promptTokens,
        completion_tokens: request?.completionTokens,
      });
      expect(usage.promptTokens).toBeGreaterThan(50);
      // Priced from the pricing table (not the reference price), converted to EUR.
      expect(request?.totalCostEur).toBeCloseTo(
        costEur(usage, { prompt: 0.000003, completion: 0.000012 }, 0.85),
        10,
      );
      expect(await stages(externalSessionId)).toMatchObject({
        AI_ANALYSIS: { status: "COMPLETED" },
        QUESTION_EXTRACTION: { status: "COMPLETED" },
      });
    }
    const leave = await db.session.findFirstOrThrow({
      where: { import: { externalSessionId: "s-leave" } },
    });
    expect(leave).toMatchObject({
      sentiment: "NEGATIVE",
      escalated: true,
      category: "LEAVE_VACATION",
    });

    // Every run recorded its outcome.
    const runs = await db.schedulerRun.findMany({ where: { finishedAt: { not: null } } });
    expect(new Set(runs.map((r) => r.schedulerId))).toEqual(
      new Set([
        "csv-import",
        "import-processing",
        "session-processing",
        "batch-processing",
        "batch-status",
      ]),
    );
  });

  it("processing the same import twice creates no second session and no duplicate message", async () => {
    const login = await db.sessionImport.findFirstOrThrow({
      where: { externalSessionId: "s-login" },
      include: { session: true },
    });
    const messagesBefore = await db.message.count({ where: { sessionId: login.session?.id } });
    // As if a worker died after the work but before marking the import done.
    await db.sessionImport.update({ where: { id: login.id }, data: { status: "PENDING" } });

    const again = await run("import-processing");
    expect(again.result.counts).toMatchObject({ considered: 1, processed: 1 });
    expect(await db.session.count({ where: { importId: login.id } })).toBe(1);
    expect(await db.message.count({ where: { sessionId: login.session?.id } })).toBe(
      messagesBefore,
    );
    expect(
      await db.sessionProcessingStatus.count({ where: { sessionId: login.session?.id } }),
    ).toBe(5);
    // The analysis already done is kept; nothing is queued again.
    expect((await run("session-processing")).result.counts).toMatchObject({ queued: 0 });
  });

  it("a transcript that times out is retried with backoff, then left for the next run with its reason", async () => {
    hangTranscripts = true;
    await db.company.create({
      data: {
        name: "Slow",
        csvUrl: `${source.url}/slow.csv`,
        csvUsername: USER,
        csvPassword: PASSWORD,
      },
    });
    await run("csv-import");
    const result = await run("import-processing");
    expect(result.result.counts).toMatchObject({ transcriptsFailed: 1 });
    // Three attempts within the run (Temporal's retry policy with backoff).
    expect(source.requests.filter((r) => r.url === "/t/s-slow.txt")).toHaveLength(3);

    const slow = await db.sessionImport.findFirstOrThrow({
      where: { externalSessionId: "s-slow" },
      include: { session: true },
    });
    // Transient: the import stays pending for a later run, its attempts counted.
    expect(slow).toMatchObject({ status: "PENDING", attempts: 1 });
    const fetchStage = await db.sessionProcessingStatus.findFirstOrThrow({
      where: { sessionId: slow.session?.id, stage: "TRANSCRIPT_FETCH" },
    });
    expect(fetchStage).toMatchObject({ status: "FAILED", retryCount: 1 });
    expect(fetchStage.errorMessage).toContain("timed out after 1000 ms");
    // The session waits for its transcript: it is not skipped for having no messages.
    expect((await run("session-processing")).result.counts).toMatchObject({ skippedNoMessages: 0 });

    hangTranscripts = false;
    TRANSCRIPTS["s-slow"] = "[02.05.2025 08:00:01] User: Where is my staff pass?";
    const recovered = await run("import-processing");
    expect(recovered.result.counts).toMatchObject({ transcriptsFetched: 1 });
    expect(
      await db.sessionImport.findFirstOrThrow({ where: { externalSessionId: "s-slow" } }),
    ).toMatchObject({
      status: "PROCESSED",
    });
  }, 90_000);
});
