import { randomBytes, randomUUID } from "node:crypto";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { pricesFor } from "../activities/analysis-results.ts";
import type { Database } from "../adapters/db/client.ts";
import { createOpenAIClient } from "../adapters/openai.ts";
import { analysisRequestBody, costEur, transcriptForModel } from "../domain/analysis.ts";
import { DIRECT_ANALYSIS_MAX_ATTEMPTS } from "../domain/pipeline-limits.ts";
import type { WorkerType } from "../domain/scheduler-id.ts";
import { analyseTranscript } from "../openai-stand-in/analysis.ts";
import type {
  BatchOutputLine,
  OpenAIStandIn,
  StandInRequestLogEntry,
  StandInStats,
} from "../openai-stand-in/server.ts";
import { type RunningWorkers, startWorkers } from "../workers/runtime.ts";
import type { BatchCreationCounts, BatchStatusCounts } from "../workflows/batch-processing.ts";
import type { RunSummary as RunSummaryOf } from "../workflows/run-record.ts";
import type { SessionProcessingCounts } from "../workflows/session-processing.ts";
import {
  type AnalysisServices,
  regionDeployment,
  startAnalysisServices,
  stopAnalysisServices,
} from "./support/analysis-deployments.ts";
import { silentLog } from "./support/harness.ts";

/**
 * Fault injection at the OpenAI boundary: the stand-in answers a seeded share of requests with
 * 429 (with retry-after), 500, no answer at all (client timeout) and malformed output, and some
 * sessions fail every time. The pipeline runs through its schedules with the production OpenAI
 * client (its retry policy), only with a short timeout and a fetch that counts what the client
 * saw. Afterwards every session must be analysed exactly once or failed with its reason, retries
 * must stay within the bound the code sets, and the three views of the faults (the stand-in's
 * counters, its request log, the client's fetch) must agree.
 */

/** Short, so a hung request costs seconds; far above the in-process stand-in's answer time. */
const CLIENT_TIMEOUT_MS = 2_000;
/**
 * Above the SDK's own longest back-off for two retries (0.5 s, then 1 s), so a retry that came
 * this late can only have waited for retry-after.
 */
const RETRY_AFTER_SECONDS = 1.2;
const CHAT_ROUTE = "POST /v1/chat/completions";

/** What the pipeline's OpenAI client saw, counted by a wrapper around the real fetch. */
interface ClientView {
  statuses: Map<number, number>;
  /** Requests the client abandoned: its timeout fired. */
  aborted: number;
  connectionErrors: number;
}

function observingFetch(view: ClientView): typeof fetch {
  return async (input, init) => {
    try {
      const response = await fetch(input, init);
      view.statuses.set(response.status, (view.statuses.get(response.status) ?? 0) + 1);
      return response;
    } catch (error) {
      if (init?.signal?.aborted) view.aborted += 1;
      else view.connectionErrors += 1;
      throw error;
    }
  };
}

const TOPICS = [
  ["User: {} How do I report sick leave?", "Assistant: Call your team lead.", "User: Thanks!"],
  ["User: {} Where can I get a new staff pass?", "Assistant: At the front desk."],
  ["User: {} Why is my salary wrong this month?", "Assistant: I forwarded this to HR."],
  ["User: {} Can I swap my shift on Friday?", "Assistant: Ask your team lead.", "User: Great"],
];

/** Each session's first user line starts with its ref, so the stand-in's log names the session. */
function transcriptLines(index: number, marker = ""): string[] {
  const ref = `ref-S${String(index).padStart(3, "0")}`;
  const topic = TOPICS[index % TOPICS.length] ?? [];
  return topic.map((line) => line.replace("{}", `${ref}${marker ? ` ${marker}` : ""}`));
}

const refOf = (text: string | undefined) => /ref-S\d{3}/.exec(text ?? "")?.[0];

interface Seeded {
  id: string;
  ref: string;
  marker: string;
  lines: string[];
}

/**
 * Sessions as import processing leaves them (transcript fetched, AI_ANALYSIS pending), inserted
 * in bulk; `createdAt` orders them in the analysis queue.
 */
async function seedSessions(
  db: Database,
  companyId: string,
  specs: { index: number; marker: string }[],
  createdAt: Date,
): Promise<Seeded[]> {
  const seeded = specs.map(({ index, marker }) => ({
    id: randomUUID(),
    importId: randomUUID(),
    ref: `ref-S${String(index).padStart(3, "0")}`,
    marker,
    lines: transcriptLines(index, marker),
  }));
  await db.sessionImport.createMany({
    data: seeded.map((s) => ({
      id: s.importId,
      companyId,
      externalSessionId: `${s.ref}-${randomBytes(3).toString("hex")}`,
      startTimeRaw: "01.05.2025 10:00:00",
      endTimeRaw: "01.05.2025 10:05:00",
      status: "PROCESSED" as const,
    })),
  });
  await db.session.createMany({
    data: seeded.map((s) => ({
      id: s.id,
      companyId,
      importId: s.importId,
      startTime: new Date("2025-05-01T10:00:00Z"),
      endTime: new Date("2025-05-01T10:05:00Z"),
      createdAt,
    })),
  });
  await db.message.createMany({
    data: seeded.flatMap((s) =>
      s.lines.map((line, order) => {
        const [role = "user", ...rest] = line.split(": ");
        return { sessionId: s.id, order, role: role.toLowerCase(), content: rest.join(": ") };
      }),
    ),
  });
  const stages = [
    ["CSV_IMPORT", "COMPLETED"],
    ["TRANSCRIPT_FETCH", "COMPLETED"],
    ["SESSION_CREATION", "COMPLETED"],
    ["AI_ANALYSIS", "PENDING"],
    ["QUESTION_EXTRACTION", "PENDING"],
  ] as const;
  await db.sessionProcessingStatus.createMany({
    data: seeded.flatMap((s) =>
      stages.map(([stage, status]) => ({ sessionId: s.id, stage, status })),
    ),
  });
  return seeded.map(({ id, ref, marker, lines }) => ({ id, ref, marker, lines }));
}

/** The usage the stand-in reports for one answer to this session (see its buildCompletion). */
function expectedUsage(lines: string[], model: string, malformed: boolean) {
  const transcript = transcriptForModel(
    lines.map((line) => {
      const [role = "user", ...rest] = line.split(": ");
      return { role: role.toLowerCase(), content: rest.join(": ") };
    }),
  );
  const body = analysisRequestBody(model, transcript);
  const promptChars = body.messages.reduce((sum, m) => sum + m.content.length, 0);
  const json = JSON.stringify(analyseTranscript(transcript));
  const content = malformed ? json.slice(0, Math.max(1, Math.floor(json.length / 2))) : json;
  const promptTokens = Math.ceil(promptChars / 4) + 3 * body.messages.length;
  return { promptTokens, completionTokens: Math.ceil(content.length / 4) };
}

function statsDelta(before: StandInStats, after: StandInStats) {
  return {
    chatRequests: (after.requests[CHAT_ROUTE] ?? 0) - (before.requests[CHAT_ROUTE] ?? 0),
    totalRequests: after.totalRequests - before.totalRequests,
    chatCompletions: after.chatCompletions - before.chatCompletions,
    rateLimited: after.injected.rateLimited - before.injected.rateLimited,
    serverErrors: after.injected.serverErrors - before.injected.serverErrors,
    timeouts: after.injected.timeouts - before.injected.timeouts,
    batchesCreated: after.batchesCreated - before.batchesCreated,
  };
}

const countWhere = <T>(items: readonly T[], test: (item: T) => boolean) =>
  items.filter(test).length;

describe("OpenAI faults: 429 with retry-after, 500, timeouts and malformed output", () => {
  let services: AnalysisServices;
  let db: Database;
  let openai: OpenAIStandIn;
  const workers: RunningWorkers[] = [];

  /**
   * One deployment per test (own region, schedules, task queues and company), its workers using
   * the production OpenAI client with a short timeout and a counting fetch.
   */
  async function deployment(env: Record<string, string>, types: readonly WorkerType[]) {
    const { stack, company } = await regionDeployment(services, env);
    const production = createOpenAIClient(stack.config);
    const view: ClientView = { statuses: new Map(), aborted: 0, connectionErrors: 0 };
    workers.push(
      await startWorkers({
        config: stack.config,
        db,
        log: silentLog,
        types,
        workflowBundle: { codePath: inject("workflowBundlePath") },
        openai: production.withOptions({
          timeout: CLIENT_TIMEOUT_MS,
          fetch: observingFetch(view),
        }),
      }),
    );
    // The production client's retries: every logical call is at most this many requests.
    return { stack, company, view, requestsPerCall: production.maxRetries + 1 };
  }

  beforeAll(async () => {
    services = await startAnalysisServices();
    ({ db, openai } = services);
  });

  afterAll(async () => {
    // Workers first: they poll the stacks' task queues and call the stand-in.
    for (const running of workers) await running.shutdown();
    await stopAnalysisServices(services);
  });

  it("direct mode: every session is analysed once or failed with its reason; retries are bounded and honour retry-after", async () => {
    const started = Date.now();
    const { stack, company, view, requestsPerCall } = await deployment(
      {
        ANALYSIS_MODE: "direct",
        ANALYSIS_MAX_CONCURRENT: "8",
        SESSION_PROCESSING_BATCH_SIZE: "50",
      },
      ["session-processing"],
    );
    // Sessions that fail on every request go first in the queue, so the slowest (the hung one)
    // runs alongside the others instead of after them.
    const doomed = await seedSessions(
      db,
      company.id,
      [
        { index: 0, marker: "ALWAYS-429" },
        { index: 1, marker: "ALWAYS-500" },
        { index: 2, marker: "ALWAYS-TIMEOUT" },
      ],
      new Date(Date.now() - 60_000),
    );
    const rest = await seedSessions(
      db,
      company.id,
      Array.from({ length: 77 }, (_, i) => ({
        index: i + 3,
        marker: i % 15 === 7 ? "MALFORMED-ANSWER" : "",
      })),
      new Date(),
    );
    const sessions = [...doomed, ...rest];
    const malformedSessions = countWhere(sessions, (s) => s.marker === "MALFORMED-ANSWER");

    const injectedRates = { rate429: 0.2, rate500: 0.1, timeoutRate: 0.05 };
    openai.configure({
      failures: { ...injectedRates, retryAfterSeconds: RETRY_AFTER_SECONDS, seed: 20250501 },
      failRequestsMatching: [
        { text: "ALWAYS-429", failure: 429 },
        { text: "ALWAYS-500", failure: 500 },
        { text: "ALWAYS-TIMEOUT", failure: "timeout" },
      ],
      malformedOutputMatching: "MALFORMED-ANSWER",
    });
    const statsBefore = openai.stats();
    const seqBefore = openai.requestLog().at(-1)?.seq ?? 0;

    // As production over time: scheduled runs until a run finds nothing left to queue.
    const runs: SessionProcessingCounts[] = [];
    for (let i = 0; i < 5; i++) {
      const { result } = await stack.run<{ counts: SessionProcessingCounts }>("session-processing");
      runs.push(result.counts);
      if (result.counts.queued === 0) break;
    }
    openai.configure({
      failures: undefined,
      failRequestsMatching: undefined,
      malformedOutputMatching: undefined,
    });
    const stats = statsDelta(statsBefore, openai.stats());
    const log = openai
      .requestLog()
      .filter((e) => e.seq > seqBefore && e.route === CHAT_ROUTE)
      .sort((a, b) => a.seq - b.seq);

    // The runs queued every session once, then found nothing left.
    expect(runs.at(-1)?.queued).toBe(0);
    expect(runs.reduce((sum, r) => sum + r.queued, 0)).toBe(sessions.length);
    const runAnalysed = runs.reduce((sum, r) => sum + r.analysed, 0);
    const runFailed = runs.reduce((sum, r) => sum + r.failed, 0);
    expect(runAnalysed + runFailed).toBe(sessions.length);
    // No failure escaped as an activity error: each one was recorded on its request.
    expect(runs.flatMap((r) => r.errors)).toEqual([]);

    // --- every session: analysed exactly once, or failed with a reason naming the fault ---
    const requests = await db.aIProcessingRequest.findMany({ where: { companyId: company.id } });
    const stages = await db.sessionProcessingStatus.findMany({
      where: { session: { companyId: company.id }, stage: "AI_ANALYSIS" },
    });
    const stageOf = new Map(stages.map((s) => [s.sessionId, s]));
    const requestsOf = new Map<string, typeof requests>();
    for (const r of requests)
      requestsOf.set(r.sessionId, [...(requestsOf.get(r.sessionId) ?? []), r]);
    const logOf = new Map<string, StandInRequestLogEntry[]>();
    for (const entry of log) {
      const ref = refOf(entry.transcriptStart) ?? "unknown";
      logOf.set(ref, [...(logOf.get(ref) ?? []), entry]);
    }
    expect(logOf.has("unknown"), "every chat completion names its session").toBe(false);

    const failedBy: Record<string, number> = {};
    let analysed = 0;
    for (const session of sessions) {
      const own = requestsOf.get(session.id) ?? [];
      expect(own, `${session.ref}: one analysis request`).toHaveLength(1);
      const [request] = own;
      if (!request) continue;
      const stage = stageOf.get(session.id);
      const seen = logOf.get(session.ref) ?? [];
      if (request.processingStatus === "PROCESSING_COMPLETE") {
        analysed += 1;
        expect(session.marker, `${session.ref} should not have been analysed`).toBe("");
        // Applied once: one answer's tokens and cost, and exactly one 200 for the session.
        const usage = expectedUsage(session.lines, request.model, false);
        expect(request).toMatchObject({ success: true, errorMessage: null, ...usage });
        const prices = await pricesFor(db, request.model, request.requestedAt);
        if (!prices) throw new Error(`no prices for ${request.model}`);
        expect(request.totalCostEur).toBe(
          costEur({ ...usage, totalTokens: 0, cachedTokens: 0, reasoningTokens: 0 }, prices, 0.85),
        );
        expect(countWhere(seen, (e) => e.outcome === 200)).toBe(1);
        expect(stage).toMatchObject({ status: "COMPLETED", errorMessage: null });
        continue;
      }
      expect(request.processingStatus, `${session.ref} is final`).toBe("PROCESSING_FAILED");
      expect(request.success).toBe(false);
      const reason = request.errorMessage ?? "";
      expect(stage).toMatchObject({ status: "FAILED", errorMessage: reason });
      const kind =
        session.marker === "MALFORMED-ANSWER"
          ? "malformed"
          : /\b429\b/.test(reason)
            ? "429"
            : /\b500\b/.test(reason)
              ? "500"
              : /timed out/i.test(reason)
                ? "timeout"
                : "unknown";
      failedBy[kind] = (failedBy[kind] ?? 0) + 1;
      if (kind === "malformed") {
        expect(reason).toContain("not valid JSON");
        // The answer was paid for: its tokens are recorded, once.
        expect(request).toMatchObject(expectedUsage(session.lines, request.model, true));
        expect(countWhere(seen, (e) => e.outcome === 200)).toBe(1);
      } else {
        expect(reason, `${session.ref}: reason names the fault`).toMatch(
          /^OpenAI request failed: (429|500) |^OpenAI request failed: Request timed out/,
        );
        // A transient fault fails a session only once every allowed request failed.
        expect(seen).toHaveLength(requestsPerCall * DIRECT_ANALYSIS_MAX_ATTEMPTS);
        expect(countWhere(seen, (e) => e.injected === undefined)).toBe(0);
      }
    }
    const expectedKind = { "ALWAYS-429": "429", "ALWAYS-500": "500", "ALWAYS-TIMEOUT": "timeout" };
    for (const session of doomed) {
      const reason = requestsOf.get(session.id)?.[0]?.errorMessage ?? "";
      const kind = expectedKind[session.marker as keyof typeof expectedKind];
      expect(reason, session.ref).toMatch(kind === "timeout" ? /timed out/i : new RegExp(kind));
    }
    expect(failedBy.unknown ?? 0).toBe(0);
    expect(failedBy.malformed ?? 0).toBe(malformedSessions);
    expect(analysed).toBe(runAnalysed);

    // --- nothing stuck ---
    expect(
      await db.aIProcessingRequest.count({
        where: {
          companyId: company.id,
          processingStatus: { in: ["PENDING_BATCHING", "BATCHING_IN_PROGRESS"] },
        },
      }),
    ).toBe(0);
    expect(countWhere(stages, (s) => s.status === "PENDING" || s.status === "IN_PROGRESS")).toBe(0);

    // --- retries are bounded: per logical call by the SDK, per session by Temporal's attempts ---
    const bound = requestsPerCall * DIRECT_ANALYSIS_MAX_ATTEMPTS;
    const perSession = [...logOf.values()].map((entries) => entries.length);
    const maxRequestsPerSession = Math.max(...perSession);
    expect(maxRequestsPerSession).toBeLessThanOrEqual(bound);
    expect(log.length).toBeLessThanOrEqual(sessions.length * bound);
    for (const entries of logOf.values()) {
      expect(Math.max(...entries.map((e) => e.sdkRetryCount ?? 0))).toBeLessThan(requestsPerCall);
      expect(countWhere(entries, (e) => e.sdkRetryCount === 0)).toBeLessThanOrEqual(
        DIRECT_ANALYSIS_MAX_ATTEMPTS,
      );
    }
    for (const session of doomed) expect(logOf.get(session.ref)).toHaveLength(bound);

    // --- the next request after a 429 waited at least retry-after; after a timeout, the timeout ---
    const gapsAfter = { 429: [] as number[], 500: [] as number[], timeout: [] as number[] };
    for (const entries of logOf.values()) {
      entries.forEach((entry, i) => {
        const next = entries[i + 1];
        if (!next || entry.injected === undefined) return;
        gapsAfter[entry.injected].push(next.at - entry.at);
      });
    }
    // Date.now() has millisecond steps and timers may fire a millisecond early: 2 ms slack.
    for (const gap of gapsAfter[429])
      expect(gap).toBeGreaterThanOrEqual(RETRY_AFTER_SECONDS * 1000 - 2);
    for (const gap of gapsAfter.timeout) expect(gap).toBeGreaterThanOrEqual(CLIENT_TIMEOUT_MS - 2);
    for (const entry of log.filter((e) => e.injected === 429)) {
      expect(entry.retryAfterSeconds).toBe(RETRY_AFTER_SECONDS);
    }
    expect(gapsAfter[429].length).toBeGreaterThan(0);

    // --- the stand-in's counters, its log and the client's view agree ---
    const logged = {
      429: countWhere(log, (e) => e.injected === 429),
      500: countWhere(log, (e) => e.injected === 500),
      timeout: countWhere(log, (e) => e.injected === "timeout"),
      ok: countWhere(log, (e) => e.outcome === 200),
    };
    expect(stats.chatRequests).toBe(log.length);
    expect(stats.totalRequests).toBe(log.length);
    expect([stats.rateLimited, stats.serverErrors, stats.timeouts, stats.chatCompletions]).toEqual([
      logged[429],
      logged[500],
      logged.timeout,
      logged.ok,
    ]);
    expect([
      view.statuses.get(429) ?? 0,
      view.statuses.get(500) ?? 0,
      view.aborted,
      view.statuses.get(200) ?? 0,
      view.connectionErrors,
    ]).toEqual([logged[429], logged[500], logged.timeout, logged.ok, 0]);
    // Every answer the client received was applied exactly once.
    expect(logged.ok).toBe(analysed + malformedSessions);
    expect(log.length).toBe(logged[429] + logged[500] + logged.timeout + logged.ok);

    const minGap = (gaps: number[]) => (gaps.length > 0 ? Math.min(...gaps) : "n/a");
    console.log(
      [
        "FAULT-FIGURES openai-direct",
        `sessions=${sessions.length}`,
        `injectedRates=429:${injectedRates.rate429},500:${injectedRates.rate500},timeout:${injectedRates.timeoutRate}`,
        `alwaysFailing=${doomed.length} malformedSessions=${malformedSessions}`,
        `runs=${runs.length}`,
        `requests=${log.length}`,
        `429=${logged[429]} 500=${logged[500]} timeouts=${logged.timeout} ok=${logged.ok}`,
        `analysed=${analysed} failed=${sessions.length - analysed}`,
        `failedBy=429:${failedBy[429] ?? 0},500:${failedBy[500] ?? 0},timeout:${failedBy.timeout ?? 0},malformed:${failedBy.malformed ?? 0}`,
        `maxRequestsPerSession=${maxRequestsPerSession} bound=${bound}(${requestsPerCall}x${DIRECT_ANALYSIS_MAX_ATTEMPTS})`,
        `retryAfterMs=${RETRY_AFTER_SECONDS * 1000} minGapAfter429Ms=${minGap(gapsAfter[429])}`,
        `minGapAfter500Ms=${minGap(gapsAfter[500])}`,
        `clientTimeoutMs=${CLIENT_TIMEOUT_MS} minGapAfterTimeoutMs=${minGap(gapsAfter.timeout)}`,
        `durationMs=${Date.now() - started}`,
      ].join(" "),
    );
  }, 150_000);

  it("batch mode: failed and malformed lines are recorded with their reason, successes applied once, requeues bounded", async () => {
    const started = Date.now();
    const maxRetries = 1;
    const { stack, company, view, requestsPerCall } = await deployment(
      {
        BATCH_MIN_REQUESTS: "1",
        BATCH_MAX_REQUESTS: "15",
        AI_MAX_RETRIES: String(maxRetries),
      },
      ["session-processing", "batch-processing"],
    );
    const markers = ["FAIL-LINE", "MALFORMED-ANSWER", "CORRUPT-LINE"];
    const sessions = await seedSessions(
      db,
      company.id,
      Array.from({ length: 40 }, (_, i) => ({
        index: 100 + i,
        // 4 failed, 4 malformed and 4 corrupt lines among 40.
        marker: i % 10 < 3 ? (markers[i % 10] ?? "") : "",
      })),
      new Date(),
    );
    const byMarker = (marker: string) => countWhere(sessions, (s) => s.marker === marker);

    const injectedRates = { rate429: 0.15, rate500: 0.1, timeoutRate: 0.05 };
    openai.configure({
      // Faults on every control-plane call: upload, create, retrieve, download.
      failures: { ...injectedRates, retryAfterSeconds: 0.3, seed: 424242 },
      failLinesMatching: "FAIL-LINE",
      malformedOutputMatching: "MALFORMED-ANSWER",
      corruptLinesMatching: "CORRUPT-LINE",
    });
    const statsBefore = openai.stats();
    const seqBefore = openai.requestLog().at(-1)?.seq ?? 0;

    const queued = await stack.run<{ counts: SessionProcessingCounts }>("session-processing");
    expect(queued.result.counts).toMatchObject({ mode: "batch", queued: sessions.length });

    // The first two batches expire (half their lines run): their other requests go back to the
    // queue, and those already requeued once fail for good. Later batches complete.
    const creations: BatchCreationCounts[] = [];
    const checks: BatchStatusCounts[] = [];
    const pending = () =>
      db.aIProcessingRequest.count({
        where: { companyId: company.id, processingStatus: "PENDING_BATCHING" },
      });
    const settle = async () => {
      for (let i = 0; i < 20; i++) {
        const { result } = await stack.run<{ counts: BatchStatusCounts }>("batch-status");
        checks.push(result.counts);
        const open = await db.aIBatchRequest.count({
          where: { companyId: company.id, status: { notIn: ["PROCESSED", "FAILED", "CANCELLED"] } },
        });
        if (open === 0) return;
      }
      throw new Error("batches still in flight after 20 status runs");
    };
    for (let i = 0; i < 10 && (await pending()) > 0; i++) {
      openai.configure({ batchOutcome: creations.length < 2 ? "expired" : "completed" });
      const { result } = await stack.run<{ counts: BatchCreationCounts }>("batch-processing");
      creations.push(result.counts);
      await settle();
    }
    // Nothing more to do for either scheduler.
    expect(
      (await stack.run<{ counts: SessionProcessingCounts }>("session-processing")).result.counts
        .queued,
    ).toBe(0);
    const last = await stack.run<{ counts: BatchCreationCounts }>("batch-processing");
    expect(last.result.counts.batchesCreated).toBe(0);

    openai.configure({
      failures: undefined,
      failLinesMatching: undefined,
      malformedOutputMatching: undefined,
      corruptLinesMatching: undefined,
      batchOutcome: "completed",
    });
    const stats = statsDelta(statsBefore, openai.stats());
    const log = openai.requestLog().filter((e) => e.seq > seqBefore);

    // --- every batch ended; every request is final ---
    const batches = await db.aIBatchRequest.findMany({
      where: { companyId: company.id },
      orderBy: { createdAt: "asc" },
    });
    expect(batches.map((b) => b.status)).toEqual([
      "FAILED",
      "FAILED",
      ...batches.slice(2).map(() => "PROCESSED"),
    ]);
    expect(batches[0]?.errorMessage).toContain("expired");
    const requests = await db.aIProcessingRequest.findMany({ where: { companyId: company.id } });
    expect(requests).toHaveLength(sessions.length);
    expect(new Set(requests.map((r) => r.sessionId)).size).toBe(sessions.length);
    const requestOf = new Map(requests.map((r) => [r.sessionId, r]));
    const stages = await db.sessionProcessingStatus.findMany({
      where: { session: { companyId: company.id }, stage: "AI_ANALYSIS" },
    });
    expect(countWhere(stages, (s) => s.status === "PENDING" || s.status === "IN_PROGRESS")).toBe(0);

    // --- each successful line applied once: the output files hold exactly one readable, valid
    // answer per completed request, with the tokens recorded on it ---
    const reader = new OpenAI({ apiKey: "faults", baseURL: openai.url, maxRetries: 0 });
    const successes = new Map<string, number>();
    const lineCounts = { ok: 0, failed: 0, malformed: 0, corrupt: 0, expired: 0 };
    for (const batch of batches) {
      for (const fileId of [batch.outputFileId, batch.errorFileId]) {
        if (!fileId) continue;
        const text = await (await reader.files.content(fileId)).text();
        for (const raw of text.split("\n").filter((l) => l !== "")) {
          let line: BatchOutputLine;
          try {
            line = JSON.parse(raw) as BatchOutputLine;
          } catch {
            lineCounts.corrupt += 1;
            continue;
          }
          if (line.error?.code === "batch_expired") lineCounts.expired += 1;
          else if (line.response?.status_code !== 200) lineCounts.failed += 1;
          else if ("choices" in line.response.body) {
            const content = line.response.body.choices[0]?.message.content ?? "";
            const valid = (() => {
              try {
                JSON.parse(content);
                return true;
              } catch {
                return false;
              }
            })();
            if (!valid) lineCounts.malformed += 1;
            else {
              lineCounts.ok += 1;
              successes.set(line.custom_id, line.response.body.usage?.prompt_tokens ?? -1);
            }
          }
        }
      }
    }
    const completed = requests.filter((r) => r.processingStatus === "PROCESSING_COMPLETE");
    expect(lineCounts.ok).toBe(successes.size);
    expect(completed.map((r) => r.id).sort()).toEqual([...successes.keys()].sort());
    for (const r of completed) {
      expect(r).toMatchObject({ success: true, errorMessage: null });
      expect(r.promptTokens).toBe(successes.get(r.id));
      expect(r.totalCostEur).toBeGreaterThan(0);
      expect(stages.find((s) => s.sessionId === r.sessionId)?.status).toBe("COMPLETED");
    }

    // --- every failure recorded with a reason naming it; requeues within AI_MAX_RETRIES ---
    const reasons: Record<string, RegExp> = {
      "FAIL-LINE": /^batch line failed \(500\)/,
      "MALFORMED-ANSWER": /not valid JSON/,
      "CORRUPT-LINE": /no result for this request in the batch output or error file/,
    };
    const gaveUp = new RegExp(`expired.*gave up after ${maxRetries} retries`);
    const failedBy: Record<string, number> = {};
    for (const session of sessions) {
      const request = requestOf.get(session.id);
      if (!request) throw new Error(`${session.ref} has no request`);
      expect(request.retryCount, session.ref).toBeLessThanOrEqual(maxRetries + 1);
      if (request.processingStatus === "PROCESSING_COMPLETE") {
        expect(session.marker, `${session.ref} should not have been analysed`).toBe("");
        continue;
      }
      expect(request.processingStatus).toBe("PROCESSING_FAILED");
      const reason = request.errorMessage ?? "";
      const stage = stages.find((s) => s.sessionId === session.id);
      expect(stage).toMatchObject({ status: "FAILED", errorMessage: reason });
      const kind = gaveUp.test(reason) ? "gaveUp" : session.marker;
      failedBy[kind] = (failedBy[kind] ?? 0) + 1;
      if (kind === "gaveUp") expect(request.retryCount).toBe(maxRetries + 1);
      else expect(reason, session.ref).toMatch(reasons[session.marker] ?? /^$/);
    }
    const requeuedRequests = countWhere(requests, (r) => r.retryCount > 0);

    // --- run records add up to the database ---
    const sum = (key: keyof BatchStatusCounts) =>
      checks.reduce((total, c) => total + (c[key] as number), 0);
    expect(sum("resultsApplied")).toBe(completed.length);
    expect(sum("failedForGood")).toBe(failedBy.gaveUp ?? 0);
    expect(sum("resultsFailed") + sum("failedForGood")).toBe(sessions.length - completed.length);
    expect(sum("requeued")).toBe(
      requests.reduce((total, r) => total + Math.min(r.retryCount, maxRetries), 0),
    );
    expect(creations.reduce((total, c) => total + c.batchesCreated, 0)).toBe(batches.length);
    expect(stats.batchesCreated).toBe(batches.length);

    // --- every control-plane call stayed within the SDK's retries; the three views agree ---
    expect(Math.max(...log.map((e) => e.sdkRetryCount ?? 0))).toBeLessThan(requestsPerCall);
    const logged = {
      429: countWhere(log, (e) => e.injected === 429),
      500: countWhere(log, (e) => e.injected === 500),
      timeout: countWhere(log, (e) => e.injected === "timeout"),
    };
    expect(stats.totalRequests).toBe(log.length);
    expect([stats.rateLimited, stats.serverErrors, stats.timeouts]).toEqual([
      logged[429],
      logged[500],
      logged.timeout,
    ]);
    expect([view.statuses.get(429) ?? 0, view.statuses.get(500) ?? 0, view.aborted]).toEqual([
      logged[429],
      logged[500],
      logged.timeout,
    ]);

    console.log(
      [
        "FAULT-FIGURES openai-batch",
        `sessions=${sessions.length}`,
        `markedLines=failed:${byMarker("FAIL-LINE")},malformed:${byMarker("MALFORMED-ANSWER")},corrupt:${byMarker("CORRUPT-LINE")}`,
        `injectedRates=429:${injectedRates.rate429},500:${injectedRates.rate500},timeout:${injectedRates.timeoutRate}`,
        `batches=${batches.length} expired=${countWhere(batches, (b) => b.status === "FAILED")}`,
        `creationRuns=${creations.length + 1} statusRuns=${checks.length}`,
        `requests=${log.length} 429=${logged[429]} 500=${logged[500]} timeouts=${logged.timeout}`,
        `lines=ok:${lineCounts.ok},failed:${lineCounts.failed},malformed:${lineCounts.malformed},corrupt:${lineCounts.corrupt},expired:${lineCounts.expired}`,
        `analysed=${completed.length} failed=${sessions.length - completed.length}`,
        `failedBy=failedLine:${failedBy["FAIL-LINE"] ?? 0},malformed:${failedBy["MALFORMED-ANSWER"] ?? 0},corrupt:${failedBy["CORRUPT-LINE"] ?? 0},gaveUpAfterRetries:${failedBy.gaveUp ?? 0}`,
        `requeuedRequests=${requeuedRequests} maxRetryCount=${Math.max(...requests.map((r) => r.retryCount))} aiMaxRetries=${maxRetries}`,
        `durationMs=${Date.now() - started}`,
      ].join(" "),
    );
  }, 150_000);
  it("batch mode: a batch OpenAI lost (404 on retrieve) and one whose output file is gone are failed at once, their requests requeued under AI_MAX_RETRIES; the other batches are still checked", async () => {
    // Injected: three companies, one batch each; the stand-in loses batch A and the output file
    // of batch B (both answer 404 through the real SDK). Counted: the status run's time and
    // counts, each batch's end state, each request's status and retry count.
    const { stack, company } = await deployment({ BATCH_MIN_REQUESTS: "1", AI_MAX_RETRIES: "1" }, [
      "session-processing",
      "batch-processing",
    ]);
    const region = stack.config.region ?? "";
    const others = await Promise.all(
      ["B", "C"].map((name) =>
        db.company.create({
          data: { name: `Vanished ${name} ${region}`, region, csvUrl: "http://127.0.0.1:9/x" },
        }),
      ),
    );
    const companies = [company, ...others];
    for (const [i, c] of companies.entries()) {
      await seedSessions(
        db,
        c.id,
        Array.from({ length: 4 }, (_, k) => ({ index: 300 + i * 10 + k, marker: "" })),
        new Date(),
      );
    }
    const reader = new OpenAI({ apiKey: "faults", baseURL: openai.url, maxRetries: 0 });
    const batchOf = async (companyId: string) => {
      const batch = await db.aIBatchRequest.findFirstOrThrow({
        where: { companyId, status: { notIn: ["PROCESSED", "FAILED", "CANCELLED"] } },
      });
      // Finished at the stand-in, so its output file exists before the check.
      const remote = await (async () => {
        for (let i = 0; i < 100; i++) {
          const r = await reader.batches.retrieve(batch.openaiBatchId ?? "");
          if (r.status === "completed") return r;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        throw new Error("the stand-in never completed the batch");
      })();
      return { batch, remote };
    };
    const requestsOf = (companyId: string) =>
      db.aIProcessingRequest.findMany({ where: { companyId }, orderBy: { id: "asc" } });

    await stack.run("session-processing");
    const created = await stack.run<{ counts: BatchCreationCounts }>("batch-processing");
    expect(created.result.counts.batchesCreated).toBe(3);
    const [a, b, c] = await Promise.all(companies.map((x) => batchOf(x.id)));
    if (!a || !b || !c) throw new Error("expected three batches");
    expect(openai.loseBatch(a.remote.id)).toBe(true);
    expect(openai.loseFile(b.remote.output_file_id ?? "")).toBe(true);

    const checkStarted = Date.now();
    const check = await stack.run<RunSummaryOf<BatchStatusCounts>>("batch-status");
    const checkMs = Date.now() - checkStarted;
    // One look per batch, no retries of a 404: seconds, not the minutes of Temporal's backoff.
    expect(checkMs).toBeLessThan(15_000);
    expect(check.result.outcome).toBe("SUCCEEDED");
    expect(check.result.counts).toMatchObject({
      checked: 3,
      processed: 1,
      failed: 2,
      stillRunning: 0,
      resultsApplied: 4,
      requeued: 8,
      failedForGood: 0,
      errors: [],
    });
    const after = await db.aIBatchRequest.findMany({
      where: { id: { in: [a.batch.id, b.batch.id, c.batch.id] } },
    });
    const state = (id: string) => after.find((x) => x.id === id);
    expect(state(a.batch.id)).toMatchObject({ status: "FAILED" });
    expect(state(a.batch.id)?.errorMessage).toContain(
      `OpenAI has no batch ${a.remote.id} (404 on retrieve)`,
    );
    expect(state(b.batch.id)).toMatchObject({ status: "FAILED" });
    expect(state(b.batch.id)?.errorMessage).toContain(
      `OpenAI has no output file ${b.remote.output_file_id} of this batch (404)`,
    );
    expect(state(c.batch.id)).toMatchObject({ status: "PROCESSED" });
    for (const [lost, reason] of [
      [a, "404 on retrieve"],
      [b, "output file"],
    ] as const) {
      for (const request of await requestsOf(lost.batch.companyId)) {
        expect(request).toMatchObject({
          processingStatus: "PENDING_BATCHING",
          batchId: null,
          retryCount: 1,
        });
        expect(request.errorMessage).toContain(reason);
      }
    }
    for (const request of await requestsOf(c.batch.companyId))
      expect(request.processingStatus).toBe("PROCESSING_COMPLETE");

    // The requeued requests get a new batch each; A's is lost again, past AI_MAX_RETRIES=1 its
    // requests fail for good with the reason; B's completes this time.
    const again = await stack.run<{ counts: BatchCreationCounts }>("batch-processing");
    expect(again.result.counts.batchesCreated).toBe(2);
    const [a2, b2] = await Promise.all([a, b].map((x) => batchOf(x.batch.companyId)));
    if (!a2 || !b2) throw new Error("expected two new batches");
    expect(openai.loseBatch(a2.remote.id)).toBe(true);
    const second = await stack.run<RunSummaryOf<BatchStatusCounts>>("batch-status");
    expect(second.result.counts).toMatchObject({
      checked: 2,
      processed: 1,
      failed: 1,
      resultsApplied: 4,
      requeued: 0,
      failedForGood: 4,
      errors: [],
    });
    for (const request of await requestsOf(a.batch.companyId)) {
      expect(request).toMatchObject({ processingStatus: "PROCESSING_FAILED", retryCount: 2 });
      expect(request.errorMessage).toMatch(/404 on retrieve.*gave up after 1 retries/);
    }
    for (const request of await requestsOf(b.batch.companyId))
      expect(request.processingStatus).toBe("PROCESSING_COMPLETE");
    // Nothing left in flight.
    expect(
      await db.aIBatchRequest.count({
        where: {
          companyId: { in: companies.map((x) => x.id) },
          status: { notIn: ["PROCESSED", "FAILED", "CANCELLED"] },
        },
      }),
    ).toBe(0);
    console.log(
      `FAULT-FIGURES openai-vanished-batch batches=3 lostBatches=2 lostFiles=1 firstCheckMs=${checkMs} requeued=8 failedForGood=4`,
    );
  }, 120_000);
});
