import { ApplicationFailure, Context } from "@temporalio/activity";
import { type CredentialOwner, credentialsForUrl } from "../adapters/credential-scope.ts";
import type { ProcessingStage } from "../adapters/db/generated/prisma/enums.ts";
import { hostBusyFailure, SourceHostBusyError } from "../adapters/host-slots.ts";
import { openSource } from "../adapters/http-source.ts";
import { describeUrl } from "../adapters/source-url.ts";
import { TRANSCRIPT_REJECTED, TRANSCRIPT_UNAVAILABLE } from "../domain/failure-types.ts";
import { DateFormatError, parseSessionDate } from "../domain/session-dates.ts";
import { boundText, PermanentSourceError, TransientSourceError } from "../domain/source-errors.ts";
import type { ActivityDeps } from "./deps.ts";
import { heartbeatWhileRunning } from "./heartbeat.ts";
import { deleteTranscriptMessages, storeTranscriptMessages } from "./transcript-store.ts";

export interface ImportRef {
  id: string;
  createdAt: string;
}

export type ImportOutcome =
  | {
      importId: string;
      status: "processed";
      transcript: "completed" | "skipped" | "failed";
      messages: number;
      error?: string;
    }
  | { importId: string; status: "failed"; error: string }
  | { importId: string; status: "skipped"; reason: string };

/** What the workflow records when an import's transcript fetch failed for good in a run. */
export interface TranscriptFailure {
  importId: string;
  /** The failure's message, as the activity threw it. */
  error: string;
  /** No later run can fix it (TRANSCRIPT_REJECTED): the stage fails for good now. */
  permanent: boolean;
  /**
   * Runs in which a transient failure is retried (SessionImport.attempts counts them): at this
   * many the stage fails for good; below, the import stays pending for a later run.
   */
  maxRuns: number;
}

/** A finished import holds no claim (lease) any more: if it is ever reset, any run may take it. */
const LEASE_DONE = { leaseUntil: null, leaseHolder: null };

export function createImportProcessingActivities({ db, config, log, hostLimiter }: ActivityDeps) {
  const zone = config.importProcessing.timeZone;

  /**
   * Turns one import into a Session with its five stage rows and its messages. Idempotent: the
   * Session is keyed by importId, stage rows by (session, stage), messages by (session, order).
   * It heartbeats while it runs, so a killed worker's imports are retried after the heartbeat
   * timeout rather than after the whole IMPORT_PROCESSING_TIMEOUT.
   */
  async function processImport(importId: string): Promise<ImportOutcome> {
    const progress = { messages: 0 };
    const stop = heartbeatWhileRunning(Context.current(), () => progress);
    try {
      return await processImportOnce(importId, progress);
    } catch (error) {
      // A retryable failure (transcript unavailable, database): say so on the row, so a
      // later give-up can quote it. Best effort: the database may be what failed.
      const message = error instanceof Error ? error.message : String(error);
      await db.sessionImport
        .updateMany({ where: { id: importId, status: "PENDING" }, data: { errorMessage: message } })
        .catch(() => undefined);
      throw error;
    } finally {
      stop();
    }
  }

  async function processImportOnce(
    importId: string,
    progress: { messages: number },
  ): Promise<ImportOutcome> {
    const row = await db.sessionImport.findUnique({
      where: { id: importId },
      include: { company: true },
    });
    if (row?.status !== "PENDING") {
      return {
        importId,
        status: "skipped",
        reason: row ? `import is ${row.status}` : "import no longer exists",
      };
    }
    if (row.processingAttempts >= config.importProcessing.maxAttempts) {
      return giveUp(importId, row.processingAttempts, row.errorMessage);
    }
    // Counted before the risky work: an attempt that takes its worker down (out of memory,
    // SIGKILL) never gets to record anything, and must still count. Temporal's retries within a
    // run count as attempts too; every recorded outcome below replaces this message.
    const attempt = row.processingAttempts + 1;
    const claimed = await db.sessionImport.updateMany({
      where: { id: importId, status: "PENDING", processingAttempts: row.processingAttempts },
      data: {
        processingAttempts: attempt,
        errorMessage: `attempt ${attempt} started ${new Date().toISOString()} and did not finish (its worker died, ran out of memory or timed out)`,
      },
    });
    if (claimed.count === 0) {
      // Another attempt (a retry overlapping a slow one) claimed it first: it does the work.
      return {
        importId,
        status: "skipped",
        reason: "import is being processed by another attempt",
      };
    }

    let startTime: Date;
    let endTime: Date;
    try {
      startTime = parseSessionDate(row.startTimeRaw, zone);
      endTime = parseSessionDate(row.endTimeRaw, zone);
    } catch (error) {
      if (!(error instanceof DateFormatError)) throw error;
      // Permanent: retrying cannot fix the data. Record why and stop.
      const reason = `unparseable date: ${error.message}`;
      await db.sessionImport.update({
        where: { id: importId },
        data: { status: "FAILED", errorMessage: reason, processedAt: new Date(), ...LEASE_DONE },
      });
      return { importId, status: "failed", error: reason };
    }

    const now = new Date();
    const session = await db.$transaction(async (tx) => {
      const created = await tx.session.upsert({
        where: { importId },
        create: {
          importId,
          companyId: row.companyId,
          startTime,
          endTime,
          ipAddress: row.ipAddress,
          country: row.countryCode,
          fullTranscriptUrl: row.fullTranscriptUrl,
          avgResponseTime: row.avgResponseTimeSeconds,
          initialMsg: row.initialMessage,
          messagesSent: row.messagesSent,
        },
        update: {},
      });
      const stage = (s: ProcessingStage, status: "COMPLETED" | "PENDING") => ({
        sessionId: created.id,
        stage: s,
        status,
        ...(status === "COMPLETED" ? { startedAt: now, completedAt: now } : {}),
      });
      await tx.sessionProcessingStatus.createMany({
        data: [
          stage("CSV_IMPORT", "COMPLETED"),
          stage("SESSION_CREATION", "COMPLETED"),
          stage("TRANSCRIPT_FETCH", "PENDING"),
          stage("AI_ANALYSIS", "PENDING"),
          stage("QUESTION_EXTRACTION", "PENDING"),
        ],
        skipDuplicates: true,
      });
      return created;
    });

    const setStage = (
      status: "IN_PROGRESS" | "COMPLETED" | "SKIPPED" | "FAILED",
      extra: object = {},
    ) =>
      db.sessionProcessingStatus.update({
        where: { sessionId_stage: { sessionId: session.id, stage: "TRANSCRIPT_FETCH" } },
        data: {
          status,
          ...(status === "IN_PROGRESS" ? { startedAt: new Date() } : { completedAt: new Date() }),
          ...extra,
        },
      });
    const finishImport = () =>
      db.sessionImport.update({
        where: { id: importId },
        data: { status: "PROCESSED", processedAt: new Date(), errorMessage: null, ...LEASE_DONE },
      });

    if (!row.fullTranscriptUrl) {
      await setStage("SKIPPED", { errorMessage: "no transcript URL" });
      await finishImport();
      return { importId, status: "processed", transcript: "skipped", messages: 0 };
    }

    await setStage("IN_PROGRESS");
    // The raw text is kept as received; TRANSCRIPT_MAX_BYTES bounds it (5 MiB by default).
    const raw: Buffer[] = [];
    let messages: number;
    try {
      const body = await fetchTranscript(row.fullTranscriptUrl, row.company);
      for await (const chunk of body) raw.push(chunk);
      const ctx = Context.current();
      messages = await storeTranscriptMessages(db, session.id, raw, {
        zone,
        maxMessages: config.importProcessing.transcriptMaxMessages,
        onChunk: (stored) => {
          progress.messages = stored;
          ctx.heartbeat(progress);
        },
      });
    } catch (error) {
      // Not a failure of this import: the run tries it again once the host has a free slot.
      if (error instanceof SourceHostBusyError) {
        // Waiting for a slot is no attempt at this import: give the count back.
        await db.sessionImport.updateMany({
          where: { id: importId, processingAttempts: attempt },
          data: { processingAttempts: attempt - 1, errorMessage: null },
        });
        throw hostBusyFailure(error);
      }
      throw transcriptFailure(error, row.fullTranscriptUrl);
    }

    const text = new TextDecoder("utf-8").decode(Buffer.concat(raw));
    raw.length = 0;
    await db.$transaction([
      // Rows past the end of what was read belong to an earlier, longer version of the file.
      db.message.deleteMany({ where: { sessionId: session.id, order: { gte: messages } } }),
      db.sessionImport.update({
        where: { id: importId },
        data: {
          // PostgreSQL text cannot hold NUL (parsing drops it from messages too).
          rawTranscriptContent: text.replaceAll("\u0000", ""),
          status: "PROCESSED",
          processedAt: new Date(),
          errorMessage: null,
          ...LEASE_DONE,
        },
      }),
      db.sessionProcessingStatus.update({
        where: { sessionId_stage: { sessionId: session.id, stage: "TRANSCRIPT_FETCH" } },
        data: {
          status: "COMPLETED",
          completedAt: new Date(),
          errorMessage: null,
          metadata: { messages },
        },
      }),
    ]);
    return { importId, status: "processed", transcript: "completed", messages };
  }

  /**
   * Past IMPORT_MAX_ATTEMPTS: the import is FAILED with the last thing an attempt recorded (or
   * that it never finished), and never taken again. Messages a dead attempt stored are removed,
   * so no half transcript is analysed.
   */
  async function giveUp(
    importId: string,
    attempts: number,
    last: string | null,
  ): Promise<ImportOutcome> {
    const reason = `gave up after ${attempts} attempts; last: ${last ?? "no error was recorded"}`;
    const now = new Date();
    await deleteTranscriptMessages(db, { importId });
    await db.$transaction([
      db.sessionProcessingStatus.updateMany({
        where: {
          session: { importId },
          stage: "TRANSCRIPT_FETCH",
          status: { in: ["PENDING", "IN_PROGRESS", "FAILED"] },
        },
        data: { status: "FAILED", completedAt: now, errorMessage: reason },
      }),
      db.sessionImport.update({
        where: { id: importId },
        data: { status: "FAILED", errorMessage: reason, processedAt: now, ...LEASE_DONE },
      }),
    ]);
    log.warn({ importId, attempts, error: reason }, "import given up");
    return { importId, status: "failed", error: reason };
  }

  async function fetchTranscript(
    url: string,
    company: CredentialOwner,
  ): Promise<AsyncIterable<Buffer>> {
    const source = await openSource({
      url,
      // Only to the CSV's origin or one the operator listed, never because the CSV names a URL.
      credentials: credentialsForUrl(url, company),
      timeoutMs: config.importProcessing.transcriptTimeoutMs,
      maxBytes: config.importProcessing.transcriptMaxBytes,
      allowedHosts: config.fetchAllowedHosts,
      allowPrivateNetworks: config.fetchAllowPrivateNetworks,
      minBytesPerSecond: config.fetchMinBytesPerSecond,
      hostLimiter,
      purpose: "transcript",
      signal: Context.current().cancellationSignal,
      accept: "text/plain, */*;q=0.5",
    });
    // A login or error page served with 200 is not a chat: fail the stage instead of analysing it.
    if (/^text\/html\b/i.test(source.contentType)) {
      source.body.destroy();
      throw new PermanentSourceError(
        `expected a plain-text transcript but the server sent an HTML page (content-type ${source.contentType})`,
      );
    }
    return source.body;
  }

  /**
   * The workflow's record of a transcript fetch that failed for good in this run (its retry
   * policy exhausted, or a failure no retry can help): the stage FAILED with the reason and no
   * messages, the import's run count (attempts) up by one, and the import done (PROCESSED) when
   * the failure is permanent or `maxRuns` runs have failed; else it stays pending for a later
   * run. Once per failed run: a repeat finds the stage FAILED already (a new attempt of the
   * import sets it IN_PROGRESS first) and changes nothing.
   */
  async function recordTranscriptFailure(failure: TranscriptFailure): Promise<ImportOutcome> {
    const { importId, error } = failure;
    const session = await db.session.findUnique({ where: { importId }, select: { id: true } });
    if (!session) return { importId, status: "skipped", reason: "import has no session" };
    // A failed stage holds no messages: none a partial read stored are analysed.
    await deleteTranscriptMessages(db, { sessionId: session.id });
    const recorded = await db.$transaction(async (tx) => {
      const now = new Date();
      const row = await tx.sessionImport.findUnique({ where: { id: importId } });
      if (row?.status !== "PENDING") return undefined;
      const attempts = row.attempts + 1;
      const final = failure.permanent || attempts >= failure.maxRuns;
      const stage = await tx.sessionProcessingStatus.updateMany({
        where: {
          sessionId: session.id,
          stage: "TRANSCRIPT_FETCH",
          status: { in: ["PENDING", "IN_PROGRESS"] },
        },
        data: { status: "FAILED", completedAt: now, errorMessage: error, retryCount: attempts },
      });
      if (stage.count === 0) return undefined;
      await tx.sessionImport.update({
        where: { id: importId },
        data: final
          ? {
              attempts,
              status: "PROCESSED",
              processedAt: now,
              ...LEASE_DONE,
              errorMessage: error,
            }
          : { attempts, errorMessage: error },
      });
      return { attempts, final };
    });
    if (recorded) {
      log.warn({ importId, ...recorded, error }, "transcript fetch failed");
      return { importId, status: "processed", transcript: "failed", messages: 0, error };
    }
    // A repeat (its first run committed, then its worker died) reports what that one recorded.
    const stage = await db.sessionProcessingStatus.findUnique({
      where: { sessionId_stage: { sessionId: session.id, stage: "TRANSCRIPT_FETCH" } },
      select: { status: true, errorMessage: true },
    });
    if (stage?.status === "FAILED") {
      const recordedError = stage.errorMessage ?? error;
      return {
        importId,
        status: "processed",
        transcript: "failed",
        messages: 0,
        error: recordedError,
      };
    }
    return { importId, status: "skipped", reason: "import is no longer pending" };
  }

  return { processImport, recordTranscriptFailure };
}

/**
 * A failed transcript fetch as the failure the workflow's retry policy acts on: a permanent one
 * (404, refused credentials, not http, an HTML page) is not retried; a transient one is, by
 * Temporal within the run and by later runs (the workflow's recordTranscriptFailure).
 */
function transcriptFailure(error: unknown, url: string): ApplicationFailure {
  // Bounded: a 60,000-character URL must not become a 60 KB error row or log line.
  const message = boundText(
    `${describeUrl(url)}: ${error instanceof Error ? error.message : String(error)}`,
  );
  const permanent =
    error instanceof PermanentSourceError && !(error instanceof TransientSourceError);
  return ApplicationFailure.create({
    type: permanent ? TRANSCRIPT_REJECTED : TRANSCRIPT_UNAVAILABLE,
    message,
    nonRetryable: permanent,
  });
}
