import { type Database, pgPoolOf } from "../adapters/db/client.ts";
import { inSqlSpan } from "../adapters/spans.ts";
import { PermanentSourceError } from "../domain/source-errors.ts";
import {
  isMessageLine,
  parseTranscriptLine,
  type TranscriptMessage,
  transcriptLines,
} from "../domain/transcript.ts";

/**
 * Stores a transcript's messages a chunk at a time, so memory follows the chunk size and not the
 * number of lines. One 3.8 MB transcript of 450,000 short lines parsed whole and written with one
 * createMany grew a worker past 6 GB until it died. The raw bytes (at most TRANSCRIPT_MAX_BYTES,
 * kept anyway as the import's raw text) are downloaded first, so the fetch's time budget covers
 * the download only, never the database's pace.
 */

/** Messages per INSERT: a handful of array parameters whatever the size; a few ms each. */
export const MESSAGE_CHUNK = 1_000;

/** More messages than TRANSCRIPT_MAX_MESSAGES: permanent, the same transcript will not shrink. */
export class TranscriptTooLongError extends PermanentSourceError {
  constructor(readonly limit: number) {
    super(
      `the transcript has more than ${limit} messages (TRANSCRIPT_MAX_MESSAGES); none were stored`,
    );
    this.name = "TranscriptTooLongError";
  }
}

// One statement per chunk, straight through node-postgres (see session-import-insert.ts for
// why not createMany). A retried attempt parses the same lines into the same orders: the
// conflict on (sessionId, order) rewrites them with what this attempt read, never doubles them.
const INSERT_MESSAGES = `INSERT INTO "Message" ("id", "sessionId", "order", "role", "content", "timestamp")
  SELECT gen_random_uuid(), $1::uuid, u.*
  FROM unnest($2::int4[], $3::text[], $4::text[], $5::timestamp(3)[]) AS u
  ON CONFLICT ("sessionId", "order") DO UPDATE
    SET "role" = EXCLUDED."role", "content" = EXCLUDED."content", "timestamp" = EXCLUDED."timestamp"`;

export interface StoreTranscriptOptions {
  zone: string;
  maxMessages: number;
  /** Called after each stored chunk with the messages stored so far (heartbeats). */
  onChunk?: (stored: number) => void;
  chunkSize?: number;
}

/**
 * Counts the messages first, and throws TranscriptTooLongError without writing anything when
 * there are more than maxMessages; then parses the lines again and upserts them in chunks.
 * Returns how many there are. Stale rows of an earlier, longer version are removed by the
 * caller when it completes the stage.
 */
export async function storeTranscriptMessages(
  db: Database,
  sessionId: string,
  body: readonly Uint8Array[],
  options: StoreTranscriptOptions,
): Promise<number> {
  let count = 0;
  for await (const line of transcriptLines(body)) {
    if (isMessageLine(line) && ++count > options.maxMessages) {
      throw new TranscriptTooLongError(options.maxMessages);
    }
  }
  const pool = pgPoolOf(db);
  const chunkSize = options.chunkSize ?? MESSAGE_CHUNK;
  let chunk: TranscriptMessage[] = [];
  let stored = 0;
  const flush = async () => {
    if (chunk.length === 0) return;
    const messages = chunk;
    await inSqlSpan("INSERT", "Message", INSERT_MESSAGES, () =>
      pool.query(INSERT_MESSAGES, [
        sessionId,
        messages.map((m) => m.order),
        messages.map((m) => m.role),
        messages.map((m) => m.content),
        // timestamp(3) keeps the wall-clock part; the Z of an ISO string is ignored, as Prisma does.
        messages.map((m) => m.timestamp?.toISOString() ?? null),
      ]),
    );
    stored += chunk.length;
    chunk = [];
    options.onChunk?.(stored);
  };
  let order = 0;
  for await (const line of transcriptLines(body)) {
    const message = parseTranscriptLine(line, order, options.zone);
    if (!message) continue;
    order += 1;
    chunk.push(message);
    if (chunk.length >= chunkSize) await flush();
  }
  await flush();
  return stored;
}

/**
 * Removes a session's messages (a refused or failed transcript's partial rows) in one statement
 * of its own: up to TRANSCRIPT_MAX_MESSAGES rows, too slow on a busy database to sit inside a
 * Prisma transaction with its time limit.
 */
export async function deleteTranscriptMessages(
  db: Database,
  where: { sessionId: string } | { importId: string },
): Promise<void> {
  if ("sessionId" in where) {
    await pgPoolOf(db).query(`DELETE FROM "Message" WHERE "sessionId" = $1::uuid`, [
      where.sessionId,
    ]);
  } else {
    await pgPoolOf(db).query(
      `DELETE FROM "Message" m USING "Session" s WHERE m."sessionId" = s.id AND s."importId" = $1::uuid`,
      [where.importId],
    );
  }
}
