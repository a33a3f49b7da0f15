/**
 * The analysis bench's baselines, measured without the platform: raw SDK calls against the
 * stand-in (the ceiling of direct mode) and the batch output applied with set-based SQL (what
 * the database can take).
 */

import type OpenAI from "openai";
import pg from "pg";
import { pricesFor } from "../activities/analysis-results.ts";
import { answerFromLine } from "../activities/batch-lines.ts";
import type { Config } from "../adapters/config.ts";
import { createDatabase } from "../adapters/db/client.ts";
import {
  type analysisRequestBody,
  costEur,
  parseAnalysis,
  type SessionAnalysis,
  type TokenUsage,
  usageOf,
} from "../domain/analysis.ts";

/** Rows per statement of the set-based baseline. */
export const SQL_CHUNK = 1_000;

/** `count` calls with `concurrency` in flight, nothing else: the stand-in + SDK ceiling. */
export async function rawCalls(
  openai: OpenAI,
  bodies: readonly ReturnType<typeof analysisRequestBody>[],
  count: number,
  concurrency: number,
): Promise<number> {
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    while (next < count) {
      const body = bodies[next++ % bodies.length];
      if (body) await openai.chat.completions.create(body);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return (count / (performance.now() - started)) * 1000;
}

interface ParsedResult {
  requestId: string;
  analysis: SessionAnalysis;
  usage: TokenUsage;
}

/**
 * Baseline for the apply step: the same output file downloaded and written with a handful of
 * set-based statements per SQL_CHUNK results (what the database can take), same columns as
 * applyAnalysisAnswer writes. Returns results/s, download included.
 */
export async function setBasedApply(
  url: string,
  openai: OpenAI,
  outputFileId: string,
  config: Config,
): Promise<{ perSecond: number; applied: number }> {
  const prismaDb = createDatabase(url, { poolSize: 1 });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const started = performance.now();
    const models = await client.query<{ model: string }>(
      `SELECT DISTINCT model FROM "AIProcessingRequest"`,
    );
    const model = models.rows[0]?.model;
    if (!model || models.rows.length !== 1) throw new Error("baseline expects one model");
    const prices = await pricesFor(prismaDb, model, new Date());
    if (!prices) throw new Error(`no prices for ${model}`);

    const text = await (await openai.files.content(outputFileId)).text();
    const results: ParsedResult[] = [];
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      const answer = answerFromLine(line);
      if (answer?.kind !== "answer") throw new Error("baseline handles answered lines only");
      const parsed = parseAnalysis(answer.content);
      if (!parsed.ok) throw new Error(`baseline: ${parsed.reason}`);
      results.push({
        requestId: answer.requestId,
        analysis: parsed.analysis,
        usage: usageOf(answer.usage),
      });
    }

    let applied = 0;
    for (let offset = 0; offset < results.length; offset += SQL_CHUNK) {
      const chunk = results.slice(offset, offset + SQL_CHUNK);
      const now = new Date();
      await client.query("BEGIN");
      const claimed = await client.query<{ id: string; sessionId: string }>(
        `UPDATE "AIProcessingRequest" r
         SET "promptTokens" = u.pt, "completionTokens" = u.ct, "totalTokens" = u.tt,
             "cachedTokens" = u.cached, "reasoningTokens" = u.reasoning,
             "promptTokenPrice" = $8, "completionTokenPrice" = $9, "totalCostEur" = u.cost,
             success = true, "errorMessage" = NULL, "processingStatus" = 'PROCESSING_COMPLETE',
             "completedAt" = $10
         FROM unnest($1::uuid[], $2::int[], $3::int[], $4::int[], $5::int[], $6::int[], $7::float8[])
           AS u(id, pt, ct, tt, cached, reasoning, cost)
         WHERE r.id = u.id AND r."processingStatus" NOT IN ('PROCESSING_COMPLETE', 'PROCESSING_FAILED')
         RETURNING r.id, r."sessionId"`,
        [
          chunk.map((r) => r.requestId),
          chunk.map((r) => r.usage.promptTokens),
          chunk.map((r) => r.usage.completionTokens),
          chunk.map((r) => r.usage.totalTokens),
          chunk.map((r) => r.usage.cachedTokens),
          chunk.map((r) => r.usage.reasoningTokens),
          chunk.map((r) => costEur(r.usage, prices, config.analysis.usdToEur)),
          prices.prompt,
          prices.completion,
          now,
        ],
      );
      const sessionOf = new Map(claimed.rows.map((r) => [r.id, r.sessionId]));
      const done = chunk.flatMap((r) => {
        const sessionId = sessionOf.get(r.requestId);
        return sessionId ? [{ ...r, sessionId }] : [];
      });
      await client.query(
        `UPDATE "Session" s
         SET language = u.language, sentiment = u.sentiment::"SentimentCategory",
             escalated = u.escalated, "forwardedHr" = u.fhr,
             category = u.category::"SessionCategory", summary = u.summary, "updatedAt" = $8
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bool[], $5::bool[], $6::text[], $7::text[])
           AS u(id, language, sentiment, escalated, fhr, category, summary)
         WHERE s.id = u.id`,
        [
          done.map((r) => r.sessionId),
          done.map((r) => r.analysis.language),
          done.map((r) => r.analysis.sentiment),
          done.map((r) => r.analysis.escalated),
          done.map((r) => r.analysis.forwarded_hr),
          done.map((r) => r.analysis.category),
          done.map((r) => r.analysis.summary),
          now,
        ],
      );
      const pairs = done.flatMap((r) =>
        r.analysis.questions.map((content, order) => ({ sessionId: r.sessionId, content, order })),
      );
      await client.query(
        `INSERT INTO "Question" (id, content) SELECT gen_random_uuid(), q FROM unnest($1::text[]) AS q
         ON CONFLICT (content) DO NOTHING`,
        [[...new Set(pairs.map((q) => q.content))]],
      );
      await client.query(`DELETE FROM "SessionQuestion" WHERE "sessionId" = ANY($1::uuid[])`, [
        done.map((r) => r.sessionId),
      ]);
      await client.query(
        `INSERT INTO "SessionQuestion" (id, "sessionId", "questionId", "order")
         SELECT gen_random_uuid(), u.sid, q.id, u.ord
         FROM unnest($1::uuid[], $2::text[], $3::int[]) AS u(sid, content, ord)
         JOIN "Question" q ON q.content = u.content`,
        [pairs.map((q) => q.sessionId), pairs.map((q) => q.content), pairs.map((q) => q.order)],
      );
      await client.query(
        `UPDATE "SessionProcessingStatus" t
         SET status = 'COMPLETED', "completedAt" = $4, "errorMessage" = NULL, "updatedAt" = $4,
             metadata = CASE WHEN t.stage = 'AI_ANALYSIS' THEN jsonb_build_object('requestId', u.rid)
                             ELSE jsonb_build_object('questions', u.nq) END
         FROM unnest($1::uuid[], $2::uuid[], $3::int[]) AS u(sid, rid, nq)
         WHERE t."sessionId" = u.sid AND t.stage IN ('AI_ANALYSIS', 'QUESTION_EXTRACTION')`,
        [
          done.map((r) => r.sessionId),
          done.map((r) => r.requestId),
          done.map((r) => r.analysis.questions.length),
          now,
        ],
      );
      await client.query("COMMIT");
      applied += done.length;
    }
    return { perSecond: (applied / (performance.now() - started)) * 1000, applied };
  } finally {
    await client.end();
    await prismaDb.$disconnect();
  }
}
