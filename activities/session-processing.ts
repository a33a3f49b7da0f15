import { randomUUID } from "node:crypto";
import { ApplicationFailure, Context } from "@temporalio/activity";
import OpenAI from "openai";
import type { Database } from "../adapters/db/client.ts";
import { Prisma } from "../adapters/db/generated/prisma/client.ts";
import { retryAfterMs } from "../adapters/openai.ts";
import { analysisRequestBody, transcriptForModel } from "../domain/analysis.ts";
import {
  ANALYSIS_ANSWER_MISSING,
  ANALYSIS_REJECTED,
  ANALYSIS_UNAVAILABLE,
} from "../domain/failure-types.ts";
import {
  type AnalysisAnswer,
  type AppliedCounts,
  type AppliedResult,
  applyAnalysisAnswer,
  applyAnalysisAnswers,
} from "./analysis-results.ts";
import type { ActivityDeps } from "./deps.ts";

export interface QueueSessionsInput {
  limit: number;
  region?: string | undefined;
  mode: "batch" | "direct";
}

export interface QueueSessionsResult {
  /** Sessions without messages: AI_ANALYSIS set to SKIPPED so they never block the queue. */
  skippedNoMessages: number;
  queued: number;
  /** In direct mode, the requests this run must analyse itself. */
  requestIds: string[];
}

/** What applying stored answers did, counted; `missing`: requests with no answer stored. */
export interface AppliedStoredCounts extends AppliedCounts {
  missing: string[];
}

export interface AdoptStrandedInput {
  /** A direct request still in progress this long after it was claimed has no run left. */
  olderThanMs: number;
  limit: number;
  mode: "batch" | "direct";
  region?: string | undefined;
}

/** The stranded requests one run took on, by what is left to do for each. */
export interface AdoptedRequests {
  /** Answers stored: to apply (no model call). */
  answered: string[];
  /** Direct mode, no answer: this run's to analyse. */
  toAnalyse: string[];
  /** Batch mode, no answer: back in the batch queue. */
  requeued: number;
  /** Adopted more than AI_MAX_RETRIES times: to fail for good. */
  exhausted: string[];
}

/** What the model-calling step did: stored an answer, found one stored, or found the request ended. */
export type RequestAnalysisResult = "stored" | "already-stored" | "already-done";

/** A direct-mode answer as stored on its request, before it is validated. */
interface StoredAnswer {
  content: string | null;
  usage: Prisma.InputJsonValue | null;
}

/** Sessions eligible for analysis: transcript stage final, AI_ANALYSIS pending, company ACTIVE. */
function pendingAnalysisSql(region: string | undefined, withMessages: boolean) {
  return Prisma.sql`
    FROM "SessionProcessingStatus" sps
    JOIN "Session" s ON s.id = sps."sessionId"
    JOIN "SessionImport" si ON si.id = s."importId"
    JOIN "Company" c ON c.id = s."companyId"
    WHERE sps.stage = 'AI_ANALYSIS' AND sps.status = 'PENDING'
      AND si.status = 'PROCESSED' AND c.status = 'ACTIVE'
      ${region ? Prisma.sql`AND c.region = ${region}` : Prisma.empty}
      AND ${withMessages ? Prisma.sql`EXISTS` : Prisma.sql`NOT EXISTS`}
        (SELECT 1 FROM "Message" m WHERE m."sessionId" = s.id)`;
}

async function defaultModels(db: Database, companyIds: string[]): Promise<Map<string, string>> {
  const rows = await db.companyAIModel.findMany({
    where: { companyId: { in: companyIds }, isDefault: true, aiModel: { isActive: true } },
    select: { companyId: true, aiModel: { select: { name: true } } },
  });
  return new Map(rows.map((r) => [r.companyId, r.aiModel.name]));
}

export function createSessionProcessingActivities({ db, config, openai, log }: ActivityDeps) {
  /**
   * Queues up to `limit` sessions for analysis, each exactly once: rows are locked with SKIP
   * LOCKED and flipped to IN_PROGRESS in the same transaction that creates the request.
   */
  async function queueSessionsForAnalysis(input: QueueSessionsInput): Promise<QueueSessionsResult> {
    const skipped = await db.$queryRaw<{ sessionId: string }[]>`
      WITH empty AS (
        SELECT sps."sessionId" ${pendingAnalysisSql(input.region, false)}
        FOR UPDATE OF sps SKIP LOCKED
      )
      UPDATE "SessionProcessingStatus" t
      SET status = 'SKIPPED', "errorMessage" = 'no messages to analyse', "completedAt" = now(), "updatedAt" = now()
      FROM empty
      WHERE t."sessionId" = empty."sessionId" AND t.stage IN ('AI_ANALYSIS', 'QUESTION_EXTRACTION')
      RETURNING t."sessionId"`;

    const requestIds = await db.$transaction(async (tx) => {
      const sessions = await tx.$queryRaw<{ sessionId: string; companyId: string }[]>`
        SELECT sps."sessionId", s."companyId" ${pendingAnalysisSql(input.region, true)}
        ORDER BY s."createdAt", s.id
        LIMIT ${input.limit}
        FOR UPDATE OF sps SKIP LOCKED`;
      if (sessions.length === 0) return [];
      const models = await defaultModels(db, [...new Set(sessions.map((s) => s.companyId))]);
      const requests = sessions.map((s) => ({
        id: randomUUID(),
        sessionId: s.sessionId,
        companyId: s.companyId,
        model: models.get(s.companyId) ?? config.analysis.fallbackModel,
        // Direct requests are in flight from the start, so no batch run can claim them.
        processingStatus:
          input.mode === "direct"
            ? ("BATCHING_IN_PROGRESS" as const)
            : ("PENDING_BATCHING" as const),
      }));
      await tx.aIProcessingRequest.createMany({ data: requests });
      await tx.sessionProcessingStatus.updateMany({
        where: { sessionId: { in: sessions.map((s) => s.sessionId) }, stage: "AI_ANALYSIS" },
        data: { status: "IN_PROGRESS", startedAt: new Date() },
      });
      return requests.map((r) => r.id);
    });

    return {
      skippedNoMessages: new Set(skipped.map((r) => r.sessionId)).size,
      queued: requestIds.length,
      requestIds: input.mode === "direct" ? requestIds : [],
    };
  }

  /**
   * Direct mode, step one (on the rate-limited analysis task queue): one chat completion for one
   * request, its answer stored as received on the request (rawAnswer). Does nothing, and calls
   * no model, when an answer is already stored or the request has ended: a retry, or a run that
   * died between the two steps, never pays for a second call. A failed call throws
   * ANALYSIS_UNAVAILABLE (retryable) or ANALYSIS_REJECTED (non-retryable); what a final failure
   * means is the workflow's to decide (recordAnalysisFailure).
   */
  async function requestAnalysis(requestId: string): Promise<RequestAnalysisResult> {
    const request = await db.aIProcessingRequest.findUnique({
      where: { id: requestId },
      select: {
        model: true,
        processingStatus: true,
        rawAnswer: true,
        session: { select: { messages: { orderBy: { order: "asc" } } } },
      },
    });
    if (!request || isEnded(request.processingStatus)) return "already-done";
    if (request.rawAnswer !== null) return "already-stored";
    const body = analysisRequestBody(request.model, transcriptForModel(request.session.messages));
    let completion: Awaited<ReturnType<typeof openai.chat.completions.create>>;
    try {
      completion = await openai.chat.completions.create(body, {
        signal: Context.current().cancellationSignal,
      });
    } catch (error) {
      throw analysisFailure(error);
    }
    const raw: StoredAnswer = {
      content: completion.choices[0]?.message.content ?? null,
      usage: (completion.usage ?? null) as Prisma.InputJsonValue | null,
    };
    // The first stored answer wins: an overlapping attempt's answer is not written over it.
    await db.aIProcessingRequest.updateMany({
      where: { id: requestId, rawAnswer: { equals: Prisma.AnyNull } },
      data: { rawAnswer: raw as unknown as Prisma.InputJsonValue },
    });
    return "stored";
  }

  /**
   * Direct mode, step two for one request (on the workflow's own queue): applyStoredAnalyses
   * with a batch of one, a missing answer thrown as ANALYSIS_ANSWER_MISSING. An answer that is
   * not a valid analysis fails the request with its reason; that is a result, not an error.
   * Executions started since BATCHED_APPLY_PATCH call applyStoredAnalyses themselves; this one
   * stays registered for those started before it.
   */
  async function applyStoredAnalysis(requestId: string): Promise<AppliedResult> {
    const applied = await applyStoredAnalyses([requestId]);
    if (applied.missing.length > 0) {
      throw ApplicationFailure.create({
        type: ANALYSIS_ANSWER_MISSING,
        message: `analysis request ${requestId} has no stored answer to apply`,
        nonRetryable: true,
      });
    }
    return applied.completed > 0 ? "completed" : applied.failed > 0 ? "failed" : "already-done";
  }

  /**
   * Direct mode, step two for several requests at once (the stored answers of the model calls
   * that ended together): one read of their answers, then the set-based apply the Batch API
   * results use, in one transaction. Requests already ended count as done, never twice; a
   * request with no stored answer is named in `missing`, the others are applied all the same.
   */
  async function applyStoredAnalyses(requestIds: string[]): Promise<AppliedStoredCounts> {
    const requests = await db.aIProcessingRequest.findMany({
      where: { id: { in: requestIds } },
      select: { id: true, processingStatus: true, rawAnswer: true },
    });
    const missing: string[] = [];
    const answers: AnalysisAnswer[] = [];
    for (const request of requests) {
      if (isEnded(request.processingStatus)) continue;
      const raw = request.rawAnswer as StoredAnswer | null;
      if (raw === null) missing.push(request.id);
      else
        answers.push({
          requestId: request.id,
          kind: "answer",
          content: raw.content,
          usage: raw.usage ?? undefined,
        });
    }
    const counts = await applyAnalysisAnswers(db, answers, config.analysis.usdToEur);
    return {
      completed: counts.completed,
      failed: counts.failed,
      alreadyDone: requestIds.length - counts.completed - counts.failed - missing.length,
      missing,
    };
  }

  /**
   * Direct-mode requests that no run will finish: still in progress `olderThanMs` after they
   * were claimed, longer than any run holds one, because their run was terminated, or their
   * answer could not be applied or their failure recorded while the database was away. Takes
   * up to `limit` of them (locked, skipping rows another run holds; claimedAt set to now, so no
   * other run takes them; retryCount raised) and says what is left to do for each; the workflow
   * does it. Batch mode puts those without an answer back in the batch queue here. A request
   * taken by an attempt whose result was lost is found again `olderThanMs` later.
   */
  async function adoptStrandedRequests(input: AdoptStrandedInput): Promise<AdoptedRequests> {
    const maxRetries = config.analysis.maxRetries;
    const requeue = input.mode === "batch";
    const now = new Date();
    // Dates go in as UTC timestamps, as Prisma writes them: no session time zone involved.
    const rows = await db.$queryRaw<{ id: string; hasAnswer: boolean; retryCount: number }[]>`
      WITH stranded AS (
        SELECT r.id FROM "AIProcessingRequest" r
        JOIN "Company" c ON c.id = r."companyId"
        WHERE r."batchId" IS NULL AND r."processingStatus" = 'BATCHING_IN_PROGRESS'
          AND r."claimedAt" < ${new Date(now.getTime() - input.olderThanMs)}::timestamp(3)
          AND c.status = 'ACTIVE'
          ${input.region ? Prisma.sql`AND c.region = ${input.region}` : Prisma.empty}
        ORDER BY r."claimedAt"
        LIMIT ${input.limit}
        FOR UPDATE OF r SKIP LOCKED
      )
      UPDATE "AIProcessingRequest" t
      SET "claimedAt" = ${now}::timestamp(3),
          "retryCount" = t."retryCount" + 1,
          "processingStatus" = CASE
            WHEN ${requeue} AND t."rawAnswer" IS NULL AND t."retryCount" < ${maxRetries}
            THEN 'PENDING_BATCHING'::"AIRequestStatus" ELSE t."processingStatus" END
      FROM stranded WHERE t.id = stranded.id
      RETURNING t.id, (t."rawAnswer" IS NOT NULL) AS "hasAnswer", t."retryCount"`;
    const live = rows.filter((r) => r.retryCount <= maxRetries);
    const unanswered = live.filter((r) => !r.hasAnswer).map((r) => r.id);
    const adopted: AdoptedRequests = {
      answered: live.filter((r) => r.hasAnswer).map((r) => r.id),
      toAnalyse: requeue ? [] : unanswered,
      requeued: requeue ? unanswered.length : 0,
      exhausted: rows.filter((r) => r.retryCount > maxRetries).map((r) => r.id),
    };
    if (rows.length > 0) {
      log.warn(
        {
          mode: input.mode,
          region: input.region,
          answered: adopted.answered.length,
          unanswered: unanswered.length,
          exhausted: adopted.exhausted.length,
        },
        "adopted analysis requests no run would finish",
      );
    }
    return adopted;
  }

  /**
   * Direct mode: the workflow's record of a request whose model call failed for good (its retry
   * policy exhausted, or a failure no retry can help). The request and its stages are FAILED
   * with the reason, once; a request already ended is left as it is.
   */
  async function recordAnalysisFailure(input: {
    requestId: string;
    error: string;
  }): Promise<AppliedResult> {
    log.warn(
      { requestId: input.requestId, reason: input.error },
      "analysis request failed for good",
    );
    return applyAnalysisAnswer(
      db,
      { requestId: input.requestId, kind: "error", error: input.error },
      config.analysis.usdToEur,
    );
  }

  /**
   * @deprecated Only for session-processing executions started before the two-step analysis
   * (workflows/session-processing.ts, TWO_STEP_ANALYSIS_PATCH), whose histories schedule this
   * activity; remove once none is open (a run lasts at most its schedule's run timeout). Both
   * steps in one activity, and, as those executions expect, a failed call recorded on the
   * request by the attempt their retry policy would not repeat.
   */
  async function analyseRequestDirect(requestId: string): Promise<AppliedResult> {
    try {
      await requestAnalysis(requestId);
    } catch (error) {
      if (!(error instanceof ApplicationFailure)) throw error;
      const { attempt, retryPolicy } = Context.current().info;
      const last =
        error.nonRetryable || attempt >= (retryPolicy?.maximumAttempts ?? Number.POSITIVE_INFINITY);
      if (!last) throw error;
      return recordAnalysisFailure({ requestId, error: error.message });
    }
    return applyStoredAnalysis(requestId);
  }

  return {
    queueSessionsForAnalysis,
    requestAnalysis,
    applyStoredAnalysis,
    applyStoredAnalyses,
    recordAnalysisFailure,
    adoptStrandedRequests,
    analyseRequestDirect,
  };
}

function isEnded(status: string): boolean {
  return status === "PROCESSING_COMPLETE" || status === "PROCESSING_FAILED";
}

function isPermanentStatus(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 409 && status !== 429;
}

/**
 * A failed model call as the failure the workflow's retry policy acts on. When OpenAI said how
 * long to wait (Retry-After on a 429 or 503), the next attempt waits that long instead of the
 * policy's interval: the workflow still decides whether there is a next attempt.
 */
function analysisFailure(error: unknown): ApplicationFailure {
  const permanent =
    error instanceof OpenAI.APIError &&
    error.status !== undefined &&
    isPermanentStatus(error.status);
  const waitMs = permanent ? undefined : retryAfterMs(error);
  return ApplicationFailure.create({
    type: permanent ? ANALYSIS_REJECTED : ANALYSIS_UNAVAILABLE,
    message: `OpenAI request failed: ${error instanceof Error ? error.message : String(error)}`,
    nonRetryable: permanent,
    ...(waitMs !== undefined ? { nextRetryDelay: waitMs } : {}),
  });
}
