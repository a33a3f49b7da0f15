import type { Database } from "../adapters/db/client.ts";
import {
  costEur,
  parseAnalysis,
  type TokenPrices,
  type TokenUsage,
  usageOf,
} from "../domain/analysis.ts";
import {
  loadOpenRequests,
  type RequestOutcome,
  type TokenColumns,
  writeOutcomes,
} from "./analysis-results-write.ts";

/**
 * Applying analysis answers (direct calls or batch lines) to their requests and sessions. Every
 * path that ends a request goes through applyAnalysisAnswers, so a request is completed or
 * failed exactly once.
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

/** Per chunk, answers by what they did: the meaning of AppliedResult, counted. */
export interface AppliedCounts {
  completed: number;
  failed: number;
  /** Unknown request, request ended before, or answered twice in the chunk. */
  alreadyDone: number;
}

interface PricingRow {
  promptTokenCost: number;
  completionTokenCost: number;
  effectiveFrom: Date;
  effectiveUntil: Date | null;
}

/** Every pricing period of the models, newest first per model: one query however many requests. */
async function pricingOf(
  db: Database,
  models: readonly string[],
): Promise<Map<string, PricingRow[]>> {
  const byModel = new Map<string, PricingRow[]>();
  if (models.length === 0) return byModel;
  const rows = await db.aIModelPricing.findMany({
    where: { aiModel: { name: { in: [...models] } } },
    orderBy: { effectiveFrom: "desc" },
    select: {
      promptTokenCost: true,
      completionTokenCost: true,
      effectiveFrom: true,
      effectiveUntil: true,
      aiModel: { select: { name: true } },
    },
  });
  for (const { aiModel, ...row } of rows) {
    const periods = byModel.get(aiModel.name) ?? [];
    periods.push(row);
    byModel.set(aiModel.name, periods);
  }
  return byModel;
}

/** The period in force at `at` (the latest started one), else the reference price. */
function priceAt(
  periods: readonly PricingRow[] | undefined,
  model: string,
  at: Date,
): TokenPrices | undefined {
  const row = periods?.find(
    (p) => p.effectiveFrom <= at && (p.effectiveUntil === null || p.effectiveUntil > at),
  );
  if (row) return { prompt: row.promptTokenCost, completion: row.completionTokenCost };
  return REFERENCE_PRICES[model];
}

/** Prices in force for a model at a moment: the pricing table first, then the reference. */
export async function pricesFor(
  db: Database,
  model: string,
  at: Date,
): Promise<TokenPrices | undefined> {
  return priceAt((await pricingOf(db, [model])).get(model), model, at);
}

/** Custom ids the database could take as request ids; anything else matches no request. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Applies a chunk of answers: one read of their requests, one of the prices of their models,
 * then one transaction of set-based writes (see analysis-results-write.ts). Answers are taken
 * in order: a request answered twice in the chunk gets its first answer.
 */
export async function applyAnalysisAnswers(
  db: Database,
  answers: readonly AnalysisAnswer[],
  usdToEur: number,
): Promise<AppliedCounts> {
  const ids = [...new Set(answers.map((a) => a.requestId).filter((id) => UUID.test(id)))];
  const requests = new Map((await loadOpenRequests(db, ids)).map((r) => [r.id, r]));
  const metered = answers.flatMap((a) => {
    const request = a.usage === undefined ? undefined : requests.get(a.requestId);
    return request ? [request.model] : [];
  });
  const pricing = await pricingOf(db, [...new Set(metered)]);

  const outcomes: RequestOutcome[] = [];
  const seen = new Set<string>();
  for (const answer of answers) {
    const request = requests.get(answer.requestId);
    if (!request || seen.has(request.id)) continue;
    seen.add(request.id);
    const usage = answer.usage === undefined ? undefined : usageOf(answer.usage);
    const prices = usage
      ? priceAt(pricing.get(request.model), request.model, request.requestedAt)
      : undefined;
    outcomes.push({
      requestId: request.id,
      sessionId: request.sessionId,
      tokens: usage ? tokenColumns(usage, prices, usdToEur) : null,
      parsed:
        answer.kind === "answer"
          ? parseAnalysis(answer.content)
          : { ok: false, reason: answer.error },
    });
  }
  const { completed, failed } = await writeOutcomes(db, outcomes, new Date());
  return { completed, failed, alreadyDone: answers.length - completed - failed };
}

/** One answer (the direct path): the chunk path with a chunk of one. */
export async function applyAnalysisAnswer(
  db: Database,
  answer: AnalysisAnswer,
  usdToEur: number,
): Promise<AppliedResult> {
  const counts = await applyAnalysisAnswers(db, [answer], usdToEur);
  return counts.completed > 0 ? "completed" : counts.failed > 0 ? "failed" : "already-done";
}

function tokenColumns(
  usage: TokenUsage,
  prices: TokenPrices | undefined,
  usdToEur: number,
): TokenColumns {
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
