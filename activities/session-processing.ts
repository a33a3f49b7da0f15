import { randomUUID } from "node:crypto";
import { ApplicationFailure, Context } from "@temporalio/activity";
import OpenAI from "openai";
import type { Database } from "../adapters/db/client.ts";
import { Prisma } from "../adapters/db/generated/prisma/client.ts";
import { analysisRequestBody, transcriptForModel } from "../domain/analysis.ts";
import { DIRECT_ANALYSIS_MAX_ATTEMPTS } from "../domain/pipeline-limits.ts";
import {
  type AnalysisAnswer,
  type AppliedResult,
  applyAnalysisAnswer,
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

  /** Direct mode: one chat completion for one request, applied at once. */
  async function analyseRequestDirect(requestId: string): Promise<AppliedResult> {
    const request = await db.aIProcessingRequest.findUnique({
      where: { id: requestId },
      select: {
        model: true,
        processingStatus: true,
        session: { select: { messages: { orderBy: { order: "asc" } } } },
      },
    });
    if (
      !request ||
      request.processingStatus === "PROCESSING_COMPLETE" ||
      request.processingStatus === "PROCESSING_FAILED"
    ) {
      return "already-done";
    }
    const body = analysisRequestBody(request.model, transcriptForModel(request.session.messages));
    let answer: AnalysisAnswer;
    try {
      const completion = await openai.chat.completions.create(body, {
        signal: Context.current().cancellationSignal,
      });
      answer = {
        requestId,
        kind: "answer",
        content: completion.choices[0]?.message.content ?? null,
        usage: completion.usage,
      };
    } catch (error) {
      const permanent =
        error instanceof OpenAI.APIError &&
        error.status !== undefined &&
        isPermanentStatus(error.status);
      const lastAttempt = Context.current().info.attempt >= DIRECT_ANALYSIS_MAX_ATTEMPTS;
      const reason = `OpenAI request failed: ${error instanceof Error ? error.message : String(error)}`;
      if (!permanent && !lastAttempt) {
        throw ApplicationFailure.create({ type: "AnalysisUnavailable", message: reason });
      }
      log.warn({ requestId, reason }, "analysis request failed for good");
      answer = { requestId, kind: "error", error: reason };
    }
    // The answer is paid for: a database hiccup while storing it is retried here, so it does
    // not cost a second model call (an activity retry would ask the model again).
    return storeWithRetries(
      () => applyAnalysisAnswer(db, answer, config.analysis.usdToEur),
      (error, attempt) =>
        log.warn({ requestId, attempt, err: error }, "storing the analysis failed; retrying"),
    );
  }

  return { queueSessionsForAnalysis, analyseRequestDirect };
}

function isPermanentStatus(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 409 && status !== 429;
}

const STORE_ATTEMPTS = 5;

/** Runs a database write up to five times, 0.5 s doubling between tries, then gives up. */
async function storeWithRetries<T>(
  write: () => Promise<T>,
  onRetry: (error: unknown, attempt: number) => void,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      if (attempt >= STORE_ATTEMPTS) throw error;
      onRetry(error, attempt);
      await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** (attempt - 1)));
    }
  }
}
