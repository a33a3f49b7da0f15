import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import type { WorkflowHandle } from "@temporalio/client";
import { afterEach, describe, expect, it } from "vitest";
import { REFERENCE_PRICES } from "../activities/analysis-results.ts";
import type { CompanyImportResult } from "../activities/csv-import.ts";
import { costEur, transcriptForModel, usageOf } from "../domain/analysis.ts";
import { SOURCE_HOST_BUSY } from "../domain/failure-types.ts";
import { analyseTranscript } from "../openai-stand-in/analysis.ts";
import { type OpenAIStandIn, startOpenAIStandIn } from "../openai-stand-in/server.ts";
import type { BatchStatusCounts } from "../workflows/batch-processing.ts";
import type { CsvImportRunCounts } from "../workflows/csv-import.ts";
import type { ImportProcessingCounts } from "../workflows/import-processing.ts";
import type { RunSummary } from "../workflows/run-record.ts";
import {
  activityAttempts,
  pendingActivities,
  startHttpServer,
  startSchedulerRun,
  startTestStack,
  type TestHttpServer,
  type TestStack,
  waitFor,
} from "./support/harness.ts";
import { killWorkerProcess, spawnWorkerProcess, type WorkerProcess } from "./support/processes.ts";

/**
 * Fault injection: a worker PROCESS is killed with SIGKILL in the middle of real work (a slow CSV
 * stream, a backlog of transcript fetches, the apply of a large batch's results), then a fresh
 * process finishes the run. Each test counts afterwards that nothing was lost or done twice, and
 * prints one `FAULT-FIGURES` line (rows, how far the killed worker got, how long recovery took).
 */

/**
 * Short, so the server gives up on the dead worker's activities within seconds; not shorter, so
 * a live worker on a busy 2-core machine never misses one (heartbeats go out every 80% of it).
 */
const HEARTBEAT_TIMEOUT_MS = 4_000;

function figures(test: string, values: Record<string, number | string>): void {
  console.log(
    `FAULT-FIGURES ${test} ${Object.entries(values)
      .map(([key, value]) => `${key}=${value}`)
      .join(" ")}`,
  );
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function stackFor(env: Record<string, string>): Promise<TestStack> {
  const stack = await startTestStack({
    env: { ACTIVITY_HEARTBEAT_TIMEOUT_MS: String(HEARTBEAT_TIMEOUT_MS), ...env },
  });
  cleanups.push(() => stack.close());
  return stack;
}

/**
 * Waits until the server has timed out the killed worker's attempt and scheduled a retry; returns
 * that activity (with the heartbeat a retry resumes from) and how long after the kill it came.
 * Bounded by the heartbeat timeout, not by the activity's start-to-close timeout.
 */
async function retryScheduled(handle: WorkflowHandle, activityType: string, killedAt: number) {
  const activity = await waitFor(
    `the server to time out the killed worker's ${activityType}`,
    async () =>
      (await pendingActivities(handle)).find(
        (p) => p.activityType === activityType && p.attempt >= 2,
      ),
    { timeoutMs: 150_000 },
  );
  const afterMs = Date.now() - killedAt;
  expect(afterMs).toBeLessThan(3 * HEARTBEAT_TIMEOUT_MS);
  return { activity, afterMs };
}

/** Spawns the replacement worker; returns how long it took to be ready and when it made progress. */
async function replacement(
  stack: TestStack,
  name: string,
  type: string,
  killedAt: number,
  progressed: () => Promise<boolean>,
): Promise<{ readyMs: number; resumedAfterMs: number }> {
  const spawnedAt = Date.now();
  await worker(stack, name, type);
  const readyMs = Date.now() - spawnedAt;
  await waitFor(`${name} to make progress`, progressed, { timeoutMs: 60_000 });
  return { readyMs, resumedAfterMs: Date.now() - killedAt };
}

async function worker(stack: TestStack, name: string, type: string): Promise<WorkerProcess> {
  const spawned = await spawnWorkerProcess(name, stack.env, [`--scheduler=${type}`]);
  cleanups.push(async () => {
    if (spawned.child.exitCode === null && spawned.child.signalCode === null)
      await killWorkerProcess(spawned);
  });
  // The first process of a run may rebuild a stale workflow bundle before it is ready.
  await spawned.waitReady(120_000);
  return spawned;
}

/** Writes the pieces with a pause after each; stops when the client goes away. */
async function trickle(res: ServerResponse, pieces: Iterable<string>, pauseMs: number) {
  for (const piece of pieces) {
    if (res.destroyed) return;
    res.write(piece);
    await sleep(pauseMs);
  }
  res.end();
}

// ---------------------------------------------------------------------------------------------
// 1. CSV import
// ---------------------------------------------------------------------------------------------

const CSV_LINES = 60_000;
const CSV_CHUNK_LINES = 1_000;
const CSV_CHUNK_PAUSE_MS = 100;

/** Line n (1-based): every 1000th (+500) repeats an earlier id; every 8000th (+4000) is malformed. */
function csvLine(n: number): { text: string; kind: "row" | "duplicate" | "malformed" } {
  const row = (id: string, messages = "3") =>
    `${id},01.05.2025 08:00:00,01.05.2025 08:05:00,10.0.0.1,NL,english,${messages},happy,no,no,https://transcripts.test/${id}.txt,2.5,100,0.0010,Greeting,Hello there`;
  if (n % 8_000 === 4_000) {
    const variant = Math.floor(n / 8_000) % 3;
    const text =
      variant === 0
        ? `s-${n},01.05.2025 08:00:00` // too few columns
        : variant === 1
          ? row("") // empty session id
          : row(`s-${n}`, "lots"); // not a number
    return { text, kind: "malformed" };
  }
  if (n % 1_000 === 500) return { text: row(`s-${n - 250}`), kind: "duplicate" };
  return { text: row(`s-${n}`), kind: "row" };
}

interface ImportProgress {
  recordsDone: number;
  counts: { rowsRead: number; inserted: number; duplicates: number; rejected: number };
}

describe("SIGKILL in the middle of real work; a fresh worker process finishes the run", () => {
  it("csv-import: a 60k-row CSV streamed slowly; the killed worker's committed rows are kept, the retry resumes from its heartbeat, every distinct session id is imported exactly once", async () => {
    // Injected: worker A is SIGKILLed while it streams a 60k-row CSV (60 duplicate ids, 8
    // malformed rows), once its heartbeat reports a fifth of the file committed. Counted: rows
    // in the database (= distinct ids), the run's rowsRead/inserted/duplicates/rejected, and
    // where B resumed.
    const lines = Array.from({ length: CSV_LINES }, (_, i) => csvLine(i + 1));
    const malformed = lines.flatMap((line, i) => (line.kind === "malformed" ? [i + 1] : []));
    const duplicates = lines.filter((line) => line.kind === "duplicate").length;
    const distinct = CSV_LINES - malformed.length - duplicates;
    /** Distinct ids among the first n lines (a duplicate always repeats an earlier line). */
    const distinctUpTo = (n: number) =>
      lines.slice(0, n).filter((line) => line.kind === "row").length;
    const chunks: string[] = [];
    for (let i = 0; i < CSV_LINES; i += CSV_CHUNK_LINES)
      chunks.push(
        lines
          .slice(i, i + CSV_CHUNK_LINES)
          .map((line) => `${line.text}\n`)
          .join(""),
      );

    const source: TestHttpServer = await startHttpServer(async (_req, res) => {
      res.writeHead(200, { "content-type": "text/csv" });
      await trickle(res, chunks, CSV_CHUNK_PAUSE_MS);
    });
    cleanups.push(() => source.close());
    const stack = await stackFor({ CSV_IMPORT_TIMEOUT: "120000" });
    const company = await stack.db.company.create({
      data: { name: "Big export", csvUrl: `${source.url}/sessions.csv` },
    });

    const a = await worker(stack, "fault-csv-a", "csv-import");
    const started = Date.now();
    const handle = await startSchedulerRun(stack, "csv-import");
    const beat = await waitFor(
      "worker A's heartbeat to report committed rows",
      async () => {
        const activity = (await pendingActivities(handle)).find(
          (p) => p.activityType === "importCompanyCsv",
        );
        const details = activity?.heartbeat as ImportProgress | undefined;
        // Well into the file (a second heartbeat), yet far from its end.
        return details && details.recordsDone >= CSV_LINES / 5 ? details : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    const killedAt = Date.now();
    expect(await killWorkerProcess(a)).toBe("SIGKILL");

    // The server notices the silence after the heartbeat timeout and schedules attempt 2; the
    // heartbeat it holds then is where the retry resumes.
    const retry = await retryScheduled(handle, "importCompanyCsv", killedAt);
    const resumeFrom = (retry.activity.heartbeat as ImportProgress).recordsDone;
    const committedByA = await stack.db.sessionImport.count();
    expect(resumeFrom).toBeGreaterThanOrEqual(beat.recordsDone);
    // A was killed in the middle: some rows committed, the file not finished.
    expect(committedByA).toBeGreaterThan(0);
    expect(committedByA).toBeLessThan(distinct);
    expect(committedByA).toBeGreaterThanOrEqual(distinctUpTo(resumeFrom));

    const b = await replacement(
      stack,
      "fault-csv-b",
      "csv-import",
      killedAt,
      async () => (await stack.db.sessionImport.count()) > committedByA,
    );
    const result = (await handle.result()) as RunSummary<CsvImportRunCounts>;
    const recoveryMs = Date.now() - killedAt;

    // Exactly once: one row per distinct session id of the file, none twice, none missing.
    expect(await stack.db.sessionImport.count()).toBe(distinct);
    const ids = await stack.db.sessionImport.findMany({ select: { externalSessionId: true } });
    expect(new Set(ids.map((r) => r.externalSessionId)).size).toBe(distinct);
    expect(result.outcome).toBe("SUCCEEDED");
    const [perCompany] = result.counts.perCompany as [CompanyImportResult];
    expect(perCompany).toMatchObject({ companyId: company.id, status: "imported" });
    // Every record of the file counted once across both attempts, rejections with their lines.
    expect(result.counts.rowsRead).toBe(CSV_LINES);
    expect(result.counts.rejected).toBe(malformed.length);
    expect(perCompany.rejections.map((r) => r.line)).toEqual(malformed);
    expect(perCompany.rejections.map((r) => r.reason)).toEqual(
      malformed.map((_, i) =>
        i % 3 === 0
          ? expect.stringContaining("expected at least 3 columns")
          : i % 3 === 1
            ? "session_id is empty"
            : expect.stringContaining("expected a whole number"),
      ),
    );
    expect(result.counts.inserted + result.counts.duplicates + result.counts.rejected).toBe(
      CSV_LINES,
    );
    // B resumed from the heartbeat, not from zero: it carried A's counts up to `resumeFrom` and
    // re-read only the rest. Rows A committed after its last heartbeat reached the server are
    // re-read by B and counted as duplicates (they were already there), so `inserted` is exact
    // only up to that window.
    const rereadByB = committedByA - distinctUpTo(resumeFrom);
    expect(result.counts.inserted).toBe(distinct - rereadByB);
    expect(result.counts.duplicates).toBe(duplicates + rereadByB);
    // The last attempt ran on B.
    const attempts = (await activityAttempts(stack.client, handle.workflowId)).filter(
      (s) => s.activity === "importCompanyCsv",
    );
    expect(attempts.map(({ at: _, ...attempt }) => attempt)).toEqual([
      { activity: "importCompanyCsv", attempt: 2, identity: "fault-csv-b:csv-import" },
    ]);
    expect(source.requests).toHaveLength(2);

    figures("csv-import", {
      lines: CSV_LINES,
      distinct,
      duplicates,
      malformed: malformed.length,
      killedAfterMs: killedAt - started,
      heartbeatRecordsAtKill: resumeFrom,
      rowsCommittedByA: committedByA,
      rereadByB,
      retryScheduledAfterMs: retry.afterMs,
      workerBReadyMs: b.readyMs,
      firstNewRowAfterKillMs: b.resumedAfterMs,
      recoveryMs,
      totalMs: Date.now() - started,
    });
  }, 180_000);

  it("import-processing: a backlog of 200 imports with slow transcripts; the killed worker's imports are retried, each ends in exactly one Session with its messages", async () => {
    // Injected: worker A is SIGKILLed while it works off 200 pending imports (transcripts answer
    // after 150 ms, 8 fetches at once), once a third are done and fetches are in flight.
    // Counted: every import's final status, one Session per processed import with exactly its
    // messages and five stage rows, and the run's counts.
    const IMPORTS = 200;
    type Kind = "messages" | "bad-date" | "no-url" | "missing";
    const kindOf = (i: number): Kind =>
      i % 40 === 13 ? "bad-date" : i % 25 === 3 ? "no-url" : i % 25 === 8 ? "missing" : "messages";
    const messagesOf = (i: number) => (kindOf(i) === "messages" ? (i % 6) + 1 : 0);
    const transcript = (i: number) =>
      Array.from(
        { length: messagesOf(i) },
        (_, k) =>
          `[01.05.2025 10:00:${String(k).padStart(2, "0")}] ${k % 2 === 0 ? "User" : "Assistant"}: message ${k} of import ${i}`,
      ).join("\n");

    let inFlight = 0;
    const source = await startHttpServer(async (req, res) => {
      const i = Number(/^\/t\/(\d+)\.txt$/.exec(req.url ?? "")?.[1]);
      inFlight += 1;
      res.once("close", () => {
        inFlight -= 1;
      });
      await sleep(150);
      if (kindOf(i) === "missing") res.writeHead(404).end("no such transcript");
      else res.writeHead(200, { "content-type": "text/plain" }).end(transcript(i));
    });
    cleanups.push(() => source.close());
    const stack = await stackFor({
      IMPORT_PROCESSING_BATCH_SIZE: "50",
      IMPORT_PROCESSING_MAX_CONCURRENT: "8",
    });
    const company = await stack.db.company.create({
      data: { name: "Backlog", csvUrl: `${source.url}/unused.csv` },
    });
    await stack.db.sessionImport.createMany({
      data: Array.from({ length: IMPORTS }, (_, i) => ({
        companyId: company.id,
        externalSessionId: `imp-${i}`,
        startTimeRaw: kindOf(i) === "bad-date" ? "31.02.2025 10:00:00" : "01.05.2025 10:00:00",
        endTimeRaw: "01.05.2025 10:05:00",
        fullTranscriptUrl: kindOf(i) === "no-url" ? null : `${source.url}/t/${i}.txt`,
        sourceLine: i + 1,
      })),
    });
    const pending = () => stack.db.sessionImport.count({ where: { status: "PENDING" } });

    const a = await worker(stack, "fault-imports-a", "import-processing");
    const started = Date.now();
    const handle = await startSchedulerRun(stack, "import-processing");
    await waitFor(
      "a third of the imports done and fetches in flight",
      async () => IMPORTS - (await pending()) >= IMPORTS / 3 && inFlight > 0,
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    const inFlightAtKill = inFlight;
    const killedAt = Date.now();
    expect(await killWorkerProcess(a)).toBe("SIGKILL");
    // Before the fix, processImport had no heartbeat timeout: a dead worker's imports waited
    // out IMPORT_PROCESSING_TIMEOUT (2 minutes by default) before their retry.
    const retry = await retryScheduled(handle, "processImport", killedAt);
    const doneByA = IMPORTS - (await pending());
    expect(doneByA).toBeLessThan(IMPORTS);

    const b = await replacement(
      stack,
      "fault-imports-b",
      "import-processing",
      killedAt,
      async () => IMPORTS - (await pending()) > doneByA,
    );
    const result = (await handle.result()) as RunSummary<ImportProcessingCounts>;
    const recoveryMs = Date.now() - killedAt;

    const imports = await stack.db.sessionImport.findMany({
      include: {
        session: {
          include: {
            _count: { select: { messages: true, processingStatuses: true } },
            messages: { select: { order: true }, orderBy: { order: "asc" } },
            processingStatuses: { where: { stage: "TRANSCRIPT_FETCH" } },
          },
        },
      },
    });
    expect(imports).toHaveLength(IMPORTS);
    const expectedFetch: Record<Kind, string | undefined> = {
      messages: "COMPLETED",
      "no-url": "SKIPPED",
      missing: "FAILED",
      "bad-date": undefined,
    };
    const seen = imports.map((row) => {
      const i = Number(row.externalSessionId.slice("imp-".length));
      return {
        i,
        status: row.status,
        fetch: row.session?.processingStatuses[0]?.status,
        stages: row.session?._count.processingStatuses ?? 0,
        orders: row.session?.messages.map((m) => m.order) ?? [],
      };
    });
    // None lost, none doubled: each import's final state is exactly what its data calls for.
    expect(seen.sort((x, y) => x.i - y.i)).toEqual(
      Array.from({ length: IMPORTS }, (_, i) => ({
        i,
        status: kindOf(i) === "bad-date" ? "FAILED" : "PROCESSED",
        fetch: expectedFetch[kindOf(i)],
        stages: kindOf(i) === "bad-date" ? 0 : 5,
        orders: Array.from({ length: messagesOf(i) }, (_, k) => k),
      })),
    );
    const badDates = Array.from({ length: IMPORTS }, (_, i) => kindOf(i)).filter(
      (k) => k === "bad-date",
    ).length;
    const totalMessages = Array.from({ length: IMPORTS }, (_, i) => messagesOf(i)).reduce(
      (sum, n) => sum + n,
      0,
    );
    expect(await stack.db.session.count()).toBe(IMPORTS - badDates);
    expect(await stack.db.message.count()).toBe(totalMessages);
    expect(await stack.db.sessionProcessingStatus.count()).toBe(5 * (IMPORTS - badDates));

    // What A held when it died was retried on B, and only there.
    const retried = (await activityAttempts(stack.client, handle.workflowId)).filter(
      (s) => s.activity === "processImport" && s.attempt > 1,
    );
    expect(retried.length).toBeGreaterThan(0);
    expect(retried.every((s) => s.identity === "fault-imports-b:import-processing")).toBe(true);
    // The run saw every import once. An import A had committed but not yet reported is counted
    // "skipped" by its retry (it is no longer PENDING), so only the sum is exact.
    expect(result.counts.considered).toBe(IMPORTS);
    expect(result.counts.processed + result.counts.failed + result.counts.skipped).toBe(IMPORTS);
    expect(result.counts.skipped).toBeLessThanOrEqual(retried.length);
    expect(result.outcome).toBe("PARTIAL");
    // A's host slots (FETCH_MAX_PER_HOST) expired with its heartbeat timeout, inside B's
    // FETCH_HOST_WAIT_MS: B never had to put an import off because a dead worker held the host.
    const hostBusy = ((await handle.fetchHistory()).events ?? []).filter(
      (e) =>
        e.activityTaskFailedEventAttributes?.failure?.applicationFailureInfo?.type ===
        SOURCE_HOST_BUSY,
    ).length;
    expect(hostBusy).toBe(0);

    figures("import-processing", {
      imports: IMPORTS,
      messages: totalMessages,
      doneByA,
      inFlightAtKill,
      retried: retried.length,
      transcriptRequests: source.requests.length,
      retryScheduledAfterMs: retry.afterMs,
      workerBReadyMs: b.readyMs,
      firstImportAfterKillMs: b.resumedAfterMs,
      recoveryMs,
      totalMs: Date.now() - started,
    });
  }, 240_000);

  it("batch results: the worker applying a completed batch of 1,500 results is killed a fifth of the way in; a fresh one finishes, every session analysed once, each cost counted once", async () => {
    // Injected: worker A is SIGKILLed while the batch-status run applies a completed batch's
    // output file, once a fifth of the results are in the database. Counted: one completed
    // request and one analysis per session, each cost equal to its own line's usage (so none
    // counted twice), questions not doubled, the batch PROCESSED, and the run's counts.
    const N = 1_500;
    const TRANSCRIPTS = [
      ["user: How do I report sick leave?", "assistant: Call your team lead before 08:00."],
      ["user: Where can I get a new staff pass?", "assistant: At the front desk.", "user: Thanks!"],
      ["user: I cannot log in, can you reset my password?", "assistant: I sent a reset link."],
      ["user: How many vacation days do I have left?", "assistant: You have 12 left."],
    ] as const;
    const transcriptOf = (i: number) => TRANSCRIPTS[i % TRANSCRIPTS.length] ?? TRANSCRIPTS[0];

    const openai: OpenAIStandIn = await startOpenAIStandIn({
      behaviour: { batch: { validatingMs: 50, inProgressMs: 200, finalizingMs: 50 } },
    });
    cleanups.push(() => openai.close());
    const stack = await stackFor({
      OPENAI_BASE_URL: openai.url,
      BATCH_MIN_REQUESTS: "1",
      BATCH_MAX_REQUESTS: String(N),
    });
    const { db } = stack;
    const company = await db.company.create({
      data: { name: "Analysed", csvUrl: "http://127.0.0.1:9/unused.csv" },
    });
    // Sessions as session processing leaves them: queued, each request waiting for a batch.
    const ids = Array.from({ length: N }, () => ({
      importId: randomUUID(),
      sessionId: randomUUID(),
    }));
    const chunked = async <T>(rows: T[], insert: (chunk: T[]) => Promise<unknown>) => {
      for (let i = 0; i < rows.length; i += 500) await insert(rows.slice(i, i + 500));
    };
    await chunked(ids, (chunk) =>
      db.sessionImport.createMany({
        data: chunk.map(({ importId }, i) => ({
          id: importId,
          companyId: company.id,
          externalSessionId: importId,
          startTimeRaw: "01.05.2025 10:00:00",
          endTimeRaw: "01.05.2025 10:05:00",
          status: "PROCESSED" as const,
          sourceLine: i + 1,
        })),
      }),
    );
    await chunked(ids, (chunk) =>
      db.session.createMany({
        data: chunk.map(({ importId, sessionId }) => ({
          id: sessionId,
          importId,
          companyId: company.id,
          startTime: new Date("2025-05-01T10:00:00Z"),
          endTime: new Date("2025-05-01T10:05:00Z"),
        })),
      }),
    );
    await chunked(
      ids.flatMap(({ sessionId }, i) =>
        transcriptOf(i).map((line, order) => {
          const [role = "user", content = ""] = line.split(": ");
          return { sessionId, order, role, content };
        }),
      ),
      (chunk) => db.message.createMany({ data: chunk }),
    );
    const stages = ["CSV_IMPORT", "TRANSCRIPT_FETCH", "SESSION_CREATION"] as const;
    const pendingStages = ["AI_ANALYSIS", "QUESTION_EXTRACTION"] as const;
    const stageRows = ids.flatMap(({ sessionId }) => [
      ...stages.map((stage) => ({ sessionId, stage, status: "COMPLETED" as const })),
      ...pendingStages.map((stage) => ({ sessionId, stage, status: "IN_PROGRESS" as const })),
    ]);
    await chunked(stageRows, (chunk) => db.sessionProcessingStatus.createMany({ data: chunk }));
    await chunked(ids, (chunk) =>
      db.aIProcessingRequest.createMany({
        data: chunk.map(({ sessionId }) => ({
          sessionId,
          companyId: company.id,
          model: "gpt-4o-mini",
        })),
      }),
    );

    const a = await worker(stack, "fault-batch-a", "batch-processing");
    const created = (await (await startSchedulerRun(stack, "batch-processing")).result()) as {
      counts: { batchesCreated: number; requestsBatched: number };
    };
    expect(created.counts).toMatchObject({ batchesCreated: 1, requestsBatched: N });
    const batch = await db.aIBatchRequest.findFirstOrThrow();
    await waitFor("the stand-in to complete the batch", async () => {
      const remote = await fetch(`${openai.url}/batches/${batch.openaiBatchId}`);
      return ((await remote.json()) as { status: string }).status === "completed";
    });

    const completed = () =>
      db.aIProcessingRequest.count({ where: { processingStatus: "PROCESSING_COMPLETE" } });
    const started = Date.now();
    const handle = await startSchedulerRun(stack, "batch-status");
    await waitFor("a fifth of the results applied", async () => (await completed()) >= N / 5, {
      timeoutMs: 60_000,
      intervalMs: 50,
    });
    const killedAt = Date.now();
    expect(await killWorkerProcess(a)).toBe("SIGKILL");
    // Before the fix, checkBatch's heartbeat timeout was a fixed 2 minutes, whatever
    // ACTIVITY_HEARTBEAT_TIMEOUT_MS said.
    const retry = await retryScheduled(handle, "checkBatch", killedAt);
    const appliedByA = await completed();
    expect(appliedByA).toBeLessThan(N);

    const b = await replacement(
      stack,
      "fault-batch-b",
      "batch-processing",
      killedAt,
      async () => (await completed()) > appliedByA,
    );
    const result = (await handle.result()) as RunSummary<BatchStatusCounts>;
    const recoveryMs = Date.now() - killedAt;

    // Both attempts downloaded the output file; the retry skipped what A had applied.
    const downloads = openai.stats().requests["GET /v1/files/:id/content"] ?? 0;
    expect(downloads).toBe(2);
    const processed = await db.aIBatchRequest.findUniqueOrThrow({ where: { id: batch.id } });
    expect(processed).toMatchObject({
      status: "PROCESSED",
      requestCount: N,
      errorFileId: null,
    });
    expect(result.outcome).toBe("SUCCEEDED");
    expect(result.counts).toMatchObject({ checked: 1, processed: 1, resultsFailed: 0 });
    const attempts = (await activityAttempts(stack.client, handle.workflowId)).filter(
      (s) => s.activity === "checkBatch",
    );
    expect(attempts.map(({ at: _, ...attempt }) => attempt)).toEqual([
      { activity: "checkBatch", attempt: 2, identity: "fault-batch-b:batch-processing" },
    ]);

    // One request per session, each completed once, with the cost of its own line's usage.
    const output = await (
      await fetch(`${openai.url}/files/${processed.outputFileId}/content`)
    ).text();
    const usageById = new Map(
      output
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => {
          const parsed = JSON.parse(line) as {
            custom_id: string;
            response: { body: { usage: unknown } };
          };
          return [parsed.custom_id, parsed.response.body.usage] as const;
        }),
    );
    expect(usageById.size).toBe(N);
    const prices = REFERENCE_PRICES["gpt-4o-mini"];
    if (!prices) throw new Error("no reference price for gpt-4o-mini");
    const requests = await db.aIProcessingRequest.findMany();
    expect(requests).toHaveLength(N);
    expect(new Set(requests.map((r) => r.sessionId)).size).toBe(N);
    let expectedCost = 0;
    for (const request of requests) {
      expect(request).toMatchObject({
        processingStatus: "PROCESSING_COMPLETE",
        success: true,
        batchId: batch.id,
      });
      const cost = costEur(
        usageOf(usageById.get(request.id)),
        prices,
        stack.config.analysis.usdToEur,
      );
      expect(request.totalCostEur).toBe(cost);
      expectedCost += cost;
    }
    const total = await db.aIProcessingRequest.aggregate({ _sum: { totalCostEur: true } });
    expect(total._sum.totalCostEur).toBeCloseTo(expectedCost, 8);

    // Every session analysed as its transcript says, its questions once.
    const expected = TRANSCRIPTS.map((lines) =>
      analyseTranscript(
        transcriptForModel(
          lines.map((line) => {
            const [role = "user", content = ""] = line.split(": ");
            return { role, content };
          }),
        ),
      ),
    );
    const sessions = await db.session.findMany({
      include: { questions: { include: { question: true }, orderBy: { order: "asc" } } },
    });
    const indexOf = new Map<string, number>(ids.map(({ sessionId }, i) => [sessionId, i]));
    for (const session of sessions) {
      const want = expected[(indexOf.get(session.id) ?? 0) % TRANSCRIPTS.length];
      expect(session).toMatchObject({
        summary: want?.summary,
        category: want?.category,
        sentiment: want?.sentiment,
      });
      expect(session.questions.map((q) => q.question.content)).toEqual(want?.questions);
    }
    for (const stage of ["AI_ANALYSIS", "QUESTION_EXTRACTION"] as const)
      expect(
        await db.sessionProcessingStatus.count({ where: { stage, status: "COMPLETED" } }),
      ).toBe(N);
    // The run reports every result of the batch, including those the killed attempt applied.
    expect(result.counts.resultsApplied).toBe(N);

    figures("batch-results", {
      results: N,
      appliedByA,
      appliedByB: N - appliedByA,
      outputDownloads: downloads,
      costEur: expectedCost.toFixed(6),
      retryScheduledAfterMs: retry.afterMs,
      workerBReadyMs: b.readyMs,
      firstResultAfterKillMs: b.resumedAfterMs,
      recoveryMs,
      totalMs: Date.now() - started,
    });
  }, 240_000);
});
