import { type Database, pgPoolOf } from "../lib/db.ts";
import { PermanentSourceError } from "../lib/http-source.ts";
import { parseTranscriptLine, type TranscriptMessage, transcriptLines } from "../lib/transcript.ts";

/**
 * Stores a transcript's messages while it streams in, a chunk at a time, so memory follows the
 * chunk size and not the transcript's size. One 3.8 MB transcript of 450,000 short lines parsed
 * whole and written with one createMany grew a worker past 6 GB until it died.
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
 * Reads the body line by line and upserts its messages in chunks; returns how many there are.
 * Throws TranscriptTooLongError as soon as the count passes maxMessages (the rest is not read).
 * Stale rows of an earlier, longer version are removed by the caller when it completes the stage.
 */
export async function storeTranscriptMessages(
  db: Database,
  sessionId: string,
  body: AsyncIterable<Uint8Array | string>,
  options: StoreTranscriptOptions,
): Promise<number> {
  const pool = pgPoolOf(db);
  const chunkSize = options.chunkSize ?? MESSAGE_CHUNK;
  let chunk: TranscriptMessage[] = [];
  let stored = 0;
  const flush = async () => {
    if (chunk.length === 0) return;
    await pool.query(INSERT_MESSAGES, [
      sessionId,
      chunk.map((m) => m.order),
      chunk.map((m) => m.role),
      chunk.map((m) => m.content),
      // timestamp(3) keeps the wall-clock part; the Z of an ISO string is ignored, as Prisma does.
      chunk.map((m) => m.timestamp?.toISOString() ?? null),
    ]);
    stored += chunk.length;
    chunk = [];
    options.onChunk?.(stored);
  };
  let order = 0;
  for await (const line of transcriptLines(body)) {
    const message = parseTranscriptLine(line, order, options.zone);
    if (!message) continue;
    order += 1;
    if (order > options.maxMessages) throw new TranscriptTooLongError(options.maxMessages);
    chunk.push(message);
    if (chunk.length >= chunkSize) await flush();
  }
  await flush();
  return stored;
}
