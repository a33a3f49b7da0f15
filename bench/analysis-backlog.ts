/**
 * An analysis backlog seeded straight into the database, and what the database says once it has
 * been worked off: the analysis and scaling benches start from and measure the same rows.
 */

import type { Database } from "../adapters/db/client.ts";

/**
 * Seeds `sessions` sessions as import processing leaves them: import PROCESSED, four messages
 * (half the sessions ask a question of their own, half one of four common ones), stage rows
 * with the transcript final and AI_ANALYSIS pending. Ids derive from `prefix` (md5), so two
 * databases seeded alike hold the same ids. With `requests`, each session also has its
 * AIProcessingRequest (id md5(prefix-request-i)) as session processing in batch mode leaves it,
 * AI_ANALYSIS IN_PROGRESS. Set-based SQL: 20,000 sessions take seconds, not minutes.
 */
export async function seedAnalysisBacklog(
  db: Database,
  options: {
    companyId: string;
    sessions: number;
    prefix: string;
    requests?: "PENDING_BATCHING" | "BATCHING_IN_PROGRESS";
  },
): Promise<void> {
  const { companyId, sessions: n, prefix: p } = options;
  const queued = options.requests !== undefined;
  await db.$executeRaw`
    INSERT INTO "SessionImport" (id, "companyId", "externalSessionId", "startTimeRaw", "endTimeRaw",
                                 status, "processedAt", "updatedAt")
    SELECT md5(${p}::text || '-import-' || i)::uuid, ${companyId}::uuid, ${p}::text || '-' || i,
           '01.05.2025 10:00:00', '01.05.2025 10:05:00', 'PROCESSED', now(), now()
    FROM generate_series(0, ${n}::int - 1) AS i`;
  await db.$executeRaw`
    INSERT INTO "Session" (id, "companyId", "importId", "startTime", "endTime", "messagesSent", "updatedAt")
    SELECT md5(${p}::text || '-session-' || i)::uuid, ${companyId}::uuid,
           md5(${p}::text || '-import-' || i)::uuid,
           timestamp '2025-05-01 10:00:00', timestamp '2025-05-01 10:05:00', 4, now()
    FROM generate_series(0, ${n}::int - 1) AS i`;
  await db.$executeRaw`
    INSERT INTO "Message" (id, "sessionId", role, content, "order")
    SELECT md5(${p}::text || '-message-' || i || '-' || o)::uuid,
           md5(${p}::text || '-session-' || i)::uuid,
           CASE WHEN o = 2 THEN 'assistant' ELSE 'user' END,
           CASE o
             WHEN 0 THEN (ARRAY['Hello, I have a question.', 'Good morning!', 'Hi there',
                                'Hallo, ik heb een vraag.'])[1 + i % 4]
             WHEN 1 THEN CASE WHEN i % 2 = 0
               THEN 'Case ' || i || ': how many vacation days do I have left?'
               ELSE (ARRAY['How do I report sick leave?', 'When is my salary paid this month?',
                           'Where can I get a new staff pass?', 'Can I swap my shift on Friday?'])[1 + (i / 2) % 4]
             END
             WHEN 2 THEN 'Let me check that for you.'
             ELSE 'Thanks, that is helpful!'
           END,
           o
    FROM generate_series(0, ${n}::int - 1) AS i CROSS JOIN generate_series(0, 3) AS o`;
  await db.$executeRaw`
    INSERT INTO "SessionProcessingStatus" (id, "sessionId", stage, status, "startedAt", "completedAt", "updatedAt")
    SELECT md5(${p}::text || '-stage-' || i || '-' || st)::uuid,
           md5(${p}::text || '-session-' || i)::uuid,
           st::"ProcessingStage",
           (CASE
              WHEN st = 'AI_ANALYSIS' AND ${queued} THEN 'IN_PROGRESS'
              WHEN st IN ('AI_ANALYSIS', 'QUESTION_EXTRACTION') THEN 'PENDING'
              ELSE 'COMPLETED'
            END)::"ProcessingStatus",
           CASE WHEN st IN ('AI_ANALYSIS', 'QUESTION_EXTRACTION') AND NOT ${queued} THEN NULL ELSE now() END,
           CASE WHEN st IN ('AI_ANALYSIS', 'QUESTION_EXTRACTION') THEN NULL ELSE now() END,
           now()
    FROM generate_series(0, ${n}::int - 1) AS i
    CROSS JOIN unnest(ARRAY['CSV_IMPORT', 'TRANSCRIPT_FETCH', 'SESSION_CREATION', 'AI_ANALYSIS',
                            'QUESTION_EXTRACTION']) AS st`;
  if (options.requests) {
    await db.$executeRaw`
      INSERT INTO "AIProcessingRequest" (id, "sessionId", "companyId", model, "processingStatus")
      SELECT md5(${p}::text || '-request-' || i)::uuid, md5(${p}::text || '-session-' || i)::uuid,
             ${companyId}::uuid, 'gpt-4o-mini', ${options.requests}::text::"AIRequestStatus"
      FROM generate_series(0, ${n}::int - 1) AS i`;
  }
}

/** What the database says about one company's analysis: row counts and time stamps. */
export interface AnalysisFigures {
  sessions: number;
  /** AIProcessingRequest rows, and the distinct sessions they belong to. */
  requests: number;
  requestedSessions: number;
  completed: number;
  failed: number;
  /** Sessions whose AI_ANALYSIS stage is COMPLETED. */
  completedStages: number;
  sessionQuestions: number;
  firstRequestedAt: Date | null;
  firstCompletedAt: Date | null;
  lastCompletedAt: Date | null;
}

export async function analysisFigures(db: Database, companyId: string): Promise<AnalysisFigures> {
  const [requests] = await db.$queryRaw<
    {
      requests: number;
      requestedSessions: number;
      completed: number;
      failed: number;
      firstRequestedAt: Date | null;
      firstCompletedAt: Date | null;
      lastCompletedAt: Date | null;
    }[]
  >`
    SELECT count(*)::int AS requests,
           count(DISTINCT "sessionId")::int AS "requestedSessions",
           (count(*) FILTER (WHERE "processingStatus" = 'PROCESSING_COMPLETE'))::int AS completed,
           (count(*) FILTER (WHERE "processingStatus" = 'PROCESSING_FAILED'))::int AS failed,
           min("requestedAt") AS "firstRequestedAt",
           min("completedAt") AS "firstCompletedAt",
           max("completedAt") AS "lastCompletedAt"
    FROM "AIProcessingRequest" WHERE "companyId" = ${companyId}::uuid`;
  const [sessions] = await db.$queryRaw<
    { sessions: number; completedStages: number; sessionQuestions: number }[]
  >`
    SELECT count(*)::int AS sessions,
           (SELECT count(*)::int FROM "SessionProcessingStatus" sps JOIN "Session" s2 ON s2.id = sps."sessionId"
             WHERE s2."companyId" = ${companyId}::uuid AND sps.stage = 'AI_ANALYSIS'
               AND sps.status = 'COMPLETED') AS "completedStages",
           (SELECT count(*)::int FROM "SessionQuestion" sq JOIN "Session" s3 ON s3.id = sq."sessionId"
             WHERE s3."companyId" = ${companyId}::uuid) AS "sessionQuestions"
    FROM "Session" s WHERE s."companyId" = ${companyId}::uuid`;
  if (!requests || !sessions) throw new Error("analysis figures: no row");
  return { ...requests, ...sessions };
}

/** Requests per second from `from` to the last recorded completion. */
export function ratePerSecond(count: number, from: Date, to: Date | null): number {
  if (!to || to.getTime() <= from.getTime()) return Number.NaN;
  return (count / (to.getTime() - from.getTime())) * 1000;
}
