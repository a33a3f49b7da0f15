import type { Database } from "../adapters/db/client.ts";
import type { AnalysisParse, SessionAnalysis } from "../domain/analysis.ts";

/**
 * The writes that end analysis requests, set-based: one statement per table for a whole chunk,
 * each taking one array per column (a handful of parameters whatever the chunk size, as in
 * session-import-insert.ts), all in one transaction. unnest yields text, so enum columns are
 * cast to their types ("AIRequestStatus", "ProcessingStatus", "SentimentCategory",
 * "SessionCategory", as named in prisma/migrations).
 */

/** Token and price columns of a request; prices are USD per token, null when unknown. */
export interface TokenColumns {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
  promptTokenPrice: number | null;
  completionTokenPrice: number | null;
  totalCostEur: number | null;
}

/** How one open request ends. */
export interface RequestOutcome {
  requestId: string;
  sessionId: string;
  /** Null when the answer carried no usage: the request's token columns are left as they are. */
  tokens: TokenColumns | null;
  parsed: AnalysisParse;
}

export interface OpenRequest {
  id: string;
  sessionId: string;
  model: string;
  requestedAt: Date;
}

interface Analysed {
  requestId: string;
  sessionId: string;
  analysis: SessionAnalysis;
}

/** A column of an unnest: its name in the statement, its PostgreSQL type, its value per row. */
type Column<T> = readonly [name: string, type: string, value: (row: T) => unknown];

/** `unnest($n::type[], ...) AS u(name, ...)`, parameters numbered from 1. */
function unnest<T>(columns: readonly Column<T>[]): string {
  const arrays = columns.map(([, type], i) => `$${i + 1}::${type}[]`).join(", ");
  return `unnest(${arrays}) AS u(${columns.map(([name]) => `"${name}"`).join(", ")})`;
}

/** The parameters of an unnest: one array per column. */
function arrays<T>(columns: readonly Column<T>[], rows: readonly T[]): unknown[][] {
  return columns.map(([, , value]) => rows.map(value));
}

const TERMINAL = `('PROCESSING_COMPLETE', 'PROCESSING_FAILED')`;

const LOAD_SQL = `SELECT id, "sessionId", model, "requestedAt" FROM "AIProcessingRequest"
  WHERE id = ANY($1::uuid[]) AND "processingStatus" NOT IN ${TERMINAL}`;

const TOKEN_COLUMNS: readonly (readonly [keyof TokenColumns, string])[] = [
  ["promptTokens", "int4"],
  ["completionTokens", "int4"],
  ["totalTokens", "int4"],
  ["cachedTokens", "int4"],
  ["reasoningTokens", "int4"],
  ["promptTokenPrice", "float8"],
  ["completionTokenPrice", "float8"],
  ["totalCostEur", "float8"],
];

const CLAIM_COLUMNS: readonly Column<RequestOutcome>[] = [
  ["id", "uuid", (o) => o.requestId],
  ["ok", "bool", (o) => o.parsed.ok],
  ["error", "text", (o) => (o.parsed.ok ? null : o.parsed.reason)],
  ["metered", "bool", (o) => o.tokens !== null],
  ...TOKEN_COLUMNS.map(
    ([column, type]): Column<RequestOutcome> => [column, type, (o) => o.tokens?.[column] ?? null],
  ),
];
// The exactly-once guard: only requests still open are ended, and only the ids this statement
// returns get the session and stage writes. A concurrent apply of the same rows waits on their
// row locks, re-checks the status once the other commits, and returns nothing for them.
const CLAIM_SQL = `UPDATE "AIProcessingRequest" r
  SET "processingStatus" = (CASE WHEN u.ok THEN 'PROCESSING_COMPLETE' ELSE 'PROCESSING_FAILED' END)::"AIRequestStatus",
      success = u.ok, "errorMessage" = u.error,
      "completedAt" = $${CLAIM_COLUMNS.length + 1}::timestamp(3),
      ${TOKEN_COLUMNS.map(([c]) => `"${c}" = CASE WHEN u.metered THEN u."${c}" ELSE r."${c}" END`).join(",\n      ")}
  FROM ${unnest(CLAIM_COLUMNS)}
  WHERE r.id = u.id AND r."processingStatus" NOT IN ${TERMINAL}
  RETURNING r.id`;

const SESSION_COLUMNS: readonly Column<Analysed>[] = [
  ["id", "uuid", (a) => a.sessionId],
  ["language", "text", (a) => a.analysis.language],
  ["sentiment", "text", (a) => a.analysis.sentiment],
  ["escalated", "bool", (a) => a.analysis.escalated],
  ["forwarded_hr", "bool", (a) => a.analysis.forwarded_hr],
  ["category", "text", (a) => a.analysis.category],
  ["summary", "text", (a) => a.analysis.summary],
];
const SESSION_SQL = `UPDATE "Session" s
  SET language = u.language, sentiment = u.sentiment::"SentimentCategory", escalated = u.escalated,
      "forwardedHr" = u.forwarded_hr, category = u.category::"SessionCategory",
      summary = u.summary, "updatedAt" = $${SESSION_COLUMNS.length + 1}::timestamp(3)
  FROM ${unnest(SESSION_COLUMNS)}
  WHERE s.id = u.id`;

// A session's questions are replaced as a whole: a re-analysis leaves only its own.
const CLEAR_QUESTIONS_SQL = `DELETE FROM "SessionQuestion" WHERE "sessionId" = ANY($1::uuid[])`;

const INSERT_QUESTIONS_SQL = `INSERT INTO "Question" (id, content)
  SELECT gen_random_uuid(), q FROM unnest($1::text[]) AS q
  ON CONFLICT (content) DO NOTHING`;

interface Link {
  sessionId: string;
  content: string;
  order: number;
}
const LINK_COLUMNS: readonly Column<Link>[] = [
  ["session_id", "uuid", (l) => l.sessionId],
  ["content", "text", (l) => l.content],
  ["ord", "int4", (l) => l.order],
];
// Joined on content: questions that existed before need no separate read of their ids.
const LINK_QUESTIONS_SQL = `INSERT INTO "SessionQuestion" (id, "sessionId", "questionId", "order")
  SELECT gen_random_uuid(), u.session_id, q.id, u.ord
  FROM ${unnest(LINK_COLUMNS)}
  JOIN "Question" q ON q.content = u.content`;

/** A session's stage write: its last ended request, and its last analysis in the chunk if any. */
interface StageWrite {
  ended: RequestOutcome;
  analysed: Analysed | undefined;
}
const STAGE_COLUMNS: readonly Column<StageWrite>[] = [
  ["session_id", "uuid", (s) => s.ended.sessionId],
  ["ok", "bool", (s) => s.ended.parsed.ok],
  ["error", "text", (s) => (s.ended.parsed.ok ? null : s.ended.parsed.reason)],
  ["request_id", "uuid", (s) => s.analysed?.requestId ?? null],
  ["questions", "int4", (s) => s.analysed?.analysis.questions.length ?? null],
];
// Both analysis stages of each session at once. The metadata is what each stage reports for
// the session's analysis; a failure with no analysis before it keeps the stage's metadata.
const STAGES_SQL = `UPDATE "SessionProcessingStatus" t
  SET status = (CASE WHEN u.ok THEN 'COMPLETED' ELSE 'FAILED' END)::"ProcessingStatus",
      "errorMessage" = u.error,
      "completedAt" = $${STAGE_COLUMNS.length + 1}::timestamp(3),
      "updatedAt" = $${STAGE_COLUMNS.length + 1}::timestamp(3),
      metadata = CASE WHEN u.request_id IS NULL THEN t.metadata
                      WHEN t.stage = 'AI_ANALYSIS' THEN jsonb_build_object('requestId', u.request_id)
                      ELSE jsonb_build_object('questions', u.questions) END
  FROM ${unnest(STAGE_COLUMNS)}
  WHERE t."sessionId" = u.session_id AND t.stage IN ('AI_ANALYSIS', 'QUESTION_EXTRACTION')`;

/** The requests among `ids` that are still open (neither completed nor failed). */
export async function loadOpenRequests(
  db: Database,
  ids: readonly string[],
): Promise<OpenRequest[]> {
  if (ids.length === 0) return [];
  return db.$queryRawUnsafe<OpenRequest[]>(LOAD_SQL, ids);
}

/**
 * Ends those requests of `outcomes` (one per request) that are still open, and writes their
 * sessions' analysis, questions and stage rows, in one transaction. Returns how many completed
 * and failed; the others had been ended already.
 */
export async function writeOutcomes(
  db: Database,
  outcomes: readonly RequestOutcome[],
  now: Date,
): Promise<{ completed: number; failed: number }> {
  if (outcomes.length === 0) return { completed: 0, failed: 0 };
  // Each statement takes its rows in key order, so overlapping applies lock in the same order
  // and wait for each other instead of deadlocking.
  const byRequest = [...outcomes].sort((a, b) => compare(a.requestId, b.requestId));
  return db.$transaction(async (tx) => {
    const claimed = new Set(
      (
        await tx.$queryRawUnsafe<{ id: string }[]>(
          CLAIM_SQL,
          ...arrays(CLAIM_COLUMNS, byRequest),
          now,
        )
      ).map((r) => r.id),
    );
    const ended = outcomes.filter((o) => claimed.has(o.requestId));
    if (ended.length === 0) return { completed: 0, failed: 0 };

    // Per session, what applying the answers one by one in order would leave: the last ended
    // request decides its stage statuses, the last successful one its analysis, questions and
    // stage metadata.
    const lastEnded = new Map<string, RequestOutcome>();
    const lastAnalysed = new Map<string, Analysed>();
    for (const o of ended) {
      lastEnded.set(o.sessionId, o);
      if (o.parsed.ok) lastAnalysed.set(o.sessionId, { ...o, analysis: o.parsed.analysis });
    }
    const analysed = [...lastAnalysed.values()].sort((a, b) => compare(a.sessionId, b.sessionId));
    if (analysed.length > 0) {
      await tx.$executeRawUnsafe(SESSION_SQL, ...arrays(SESSION_COLUMNS, analysed), now);
      await tx.$executeRawUnsafe(
        CLEAR_QUESTIONS_SQL,
        analysed.map((a) => a.sessionId),
      );
      const links = analysed.flatMap((a) =>
        a.analysis.questions.map((content, order) => ({ sessionId: a.sessionId, content, order })),
      );
      if (links.length > 0) {
        // Sorted, so concurrent inserts of the same new questions lock them in one order.
        const contents = [...new Set(links.map((l) => l.content))].sort(compare);
        await tx.$executeRawUnsafe(INSERT_QUESTIONS_SQL, contents);
        await tx.$executeRawUnsafe(LINK_QUESTIONS_SQL, ...arrays(LINK_COLUMNS, links));
      }
    }
    const stages = [...lastEnded.values()]
      .sort((a, b) => compare(a.sessionId, b.sessionId))
      .map((ended) => ({ ended, analysed: lastAnalysed.get(ended.sessionId) }));
    await tx.$executeRawUnsafe(STAGES_SQL, ...arrays(STAGE_COLUMNS, stages), now);

    const completed = ended.filter((o) => o.parsed.ok).length;
    return { completed, failed: ended.length - completed };
  });
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
