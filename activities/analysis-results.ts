import {
  costEur,
  parseAnalysis,
  type TokenPrices,
  type TokenUsage,
  usageOf,
} from "../lib/analysis.ts";
import type { Database } from "../lib/db.ts";
import type { SentimentCategory, SessionCategory } from "../lib/generated/prisma/enums.ts";

/**
 * Applying one analysis answer (direct call or batch line) to its request and session. Every
 * path that ends a request goes through here, so a request is completed or failed exactly once.
 */

/** Reference prices (USD per token) used when the database has no pricing row for a model. */
export const REFERENCE_PRICES: Record<string, TokenPrices> = {
  "gpt-4o": { prompt: 0.0000025, completion: 0.00001 },
  "gpt-4o-mini": { prompt: 0.00000015, completion: 0.0000006 },
};

export type AnalysisAnswer =
  | { requestId: string; kind: "answer"; content: string | null; usage: unknown }
  | { requestId: string; kind: "error"; error: string; usage?: unknown };

export type AppliedResult = "completed" | "failed" | "already-done";

/** Prices in force for a model at a moment: the pricing table first, then the reference. */
export async function pricesFor(
  db: Database,
  model: string,
  at: Date,
): Promise<TokenPrices | undefined> {
  const row = await db.aIModelPricing.findFirst({
    where: {
      aiModel: { name: model },
      effectiveFrom: { lte: at },
      OR: [{ effectiveUntil: null }, { effectiveUntil: { gt: at } }],
    },
    orderBy: { effectiveFrom: "desc" },
  });
  if (row) return { prompt: row.promptTokenCost, completion: row.completionTokenCost };
  return REFERENCE_PRICES[model];
}

export async function applyAnalysisAnswer(
  db: Database,
  answer: AnalysisAnswer,
  usdToEur: number,
): Promise<AppliedResult> {
  const request = await db.aIProcessingRequest.findUnique({
    where: { id: answer.requestId },
    select: { id: true, sessionId: true, model: true, requestedAt: true, processingStatus: true },
  });
  if (!request) return "already-done";
  if (
    request.processingStatus === "PROCESSING_COMPLETE" ||
    request.processingStatus === "PROCESSING_FAILED"
  ) {
    return "already-done";
  }

  const usage = answer.usage === undefined ? undefined : usageOf(answer.usage);
  const prices = usage ? await pricesFor(db, request.model, request.requestedAt) : undefined;
  const tokenFields = usage ? tokenColumns(usage, prices, usdToEur) : {};
  const parsed =
    answer.kind === "answer"
      ? parseAnalysis(answer.content)
      : { ok: false as const, reason: answer.error };
  const now = new Date();

  if (!parsed.ok) {
    const reason = parsed.reason;
    return db.$transaction(async (tx) => {
      // Guarded like the success path: a late failure never overwrites a result another
      // attempt (or a concurrent apply) already recorded.
      const claimed = await tx.aIProcessingRequest.updateMany({
        where: {
          id: request.id,
          processingStatus: { notIn: ["PROCESSING_COMPLETE", "PROCESSING_FAILED"] },
        },
        data: {
          ...tokenFields,
          success: false,
          errorMessage: reason,
          processingStatus: "PROCESSING_FAILED",
          completedAt: now,
        },
      });
      if (claimed.count === 0) return "already-done" as const;
      await tx.sessionProcessingStatus.updateMany({
        where: {
          sessionId: request.sessionId,
          stage: { in: ["AI_ANALYSIS", "QUESTION_EXTRACTION"] },
        },
        data: { status: "FAILED", errorMessage: reason, completedAt: now },
      });
      return "failed" as const;
    });
  }

  const { analysis } = parsed;
  await db.$transaction(async (tx) => {
    // The guard against applying twice lives in the same transaction as the writes.
    const claimed = await tx.aIProcessingRequest.updateMany({
      where: {
        id: request.id,
        processingStatus: { notIn: ["PROCESSING_COMPLETE", "PROCESSING_FAILED"] },
      },
      data: {
        ...tokenFields,
        success: true,
        errorMessage: null,
        processingStatus: "PROCESSING_COMPLETE",
        completedAt: now,
      },
    });
    if (claimed.count === 0) return;
    await tx.session.update({
      where: { id: request.sessionId },
      data: {
        language: analysis.language,
        sentiment: analysis.sentiment as SentimentCategory,
        escalated: analysis.escalated,
        forwardedHr: analysis.forwarded_hr,
        category: analysis.category as SessionCategory,
        summary: analysis.summary,
      },
    });
    if (analysis.questions.length > 0) {
      await tx.question.createMany({
        data: analysis.questions.map((content) => ({ content })),
        skipDuplicates: true,
      });
      const questions = await tx.question.findMany({
        where: { content: { in: analysis.questions } },
        select: { id: true, content: true },
      });
      const idOf = new Map(questions.map((q) => [q.content, q.id]));
      await tx.sessionQuestion.deleteMany({ where: { sessionId: request.sessionId } });
      await tx.sessionQuestion.createMany({
        data: analysis.questions.flatMap((content, order) => {
          const questionId = idOf.get(content);
          return questionId ? [{ sessionId: request.sessionId, questionId, order }] : [];
        }),
      });
    }
    await tx.sessionProcessingStatus.updateMany({
      where: { sessionId: request.sessionId, stage: "AI_ANALYSIS" },
      data: {
        status: "COMPLETED",
        completedAt: now,
        errorMessage: null,
        metadata: { requestId: request.id },
      },
    });
    await tx.sessionProcessingStatus.updateMany({
      where: { sessionId: request.sessionId, stage: "QUESTION_EXTRACTION" },
      data: {
        status: "COMPLETED",
        completedAt: now,
        errorMessage: null,
        metadata: { questions: analysis.questions.length },
      },
    });
  });
  return "completed";
}

function tokenColumns(usage: TokenUsage, prices: TokenPrices | undefined, usdToEur: number) {
  return {
    promptTokens: usage.promptTokens,
    completionTokens: usage.completionTokens,
    totalTokens: usage.totalTokens,
    cachedTokens: usage.cachedTokens,
    reasoningTokens: usage.reasoningTokens,
    promptTokenPrice: prices?.prompt ?? null,
    completionTokenPrice: prices?.completion ?? null,
    totalCostEur: prices ? costEur(usage, prices, usdToEur) : null,
  };
}
