import { ApplicationFailure, Context } from "@temporalio/activity";
import { type CredentialOwner, credentialsForUrl } from "../lib/credential-scope.ts";
import type { ProcessingStage } from "../lib/generated/prisma/enums.ts";
import { hostBusyFailure, SourceHostBusyError } from "../lib/host-slots.ts";
import {
  boundText,
  describeUrl,
  openSource,
  PermanentSourceError,
  TransientSourceError,
} from "../lib/http-source.ts";
import { IMPORT_ACTIVITY_MAX_ATTEMPTS, MAX_TRANSCRIPT_ATTEMPTS } from "../lib/pipeline-limits.ts";
import { DateFormatError, parseSessionDate } from "../lib/session-dates.ts";
import { parseTranscript } from "../lib/transcript.ts";
import type { ActivityDeps } from "./deps.ts";
import { heartbeatWhileRunning } from "./heartbeat.ts";

export interface ClaimImportsInput {
  region?: string | undefined;
  limit: number;
  /** Keyset cursor: imports created after this one (same createdAt: larger id). */
  after?: { createdAt: string; id: string } | undefined;
}

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

/** A finished import holds no claim (lease) any more: if it is ever reset, any run may take it. */
const LEASE_DONE = { leaseUntil: null, leaseHolder: null };

export function createImportProcessingActivities({ db, config, log, hostLimiter }: ActivityDeps) {
  const zone = config.importProcessing.timeZone;

  /** The oldest PENDING imports of ACTIVE companies, one page at a time. */
  async function listPendingImports(input: ClaimImportsInput): Promise<ImportRef[]> {
    const after = input.after
      ? {
          OR: [
            { createdAt: { gt: new Date(input.after.createdAt) } },
            { createdAt: new Date(input.after.createdAt), id: { gt: input.after.id } },
          ],
        }
      : {};
    const rows = await db.sessionImport.findMany({
      where: {
        status: "PENDING",
        company: { status: "ACTIVE", ...(input.region ? { region: input.region } : {}) },
        ...after,
      },
      orderBy: [{ createdAt: "asc" }, { id: "asc" }],
      take: input.limit,
      select: { id: true, createdAt: true },
    });
    return rows.map((r) => ({ id: r.id, createdAt: r.createdAt.toISOString() }));
  }

  /**
   * Turns one import into a Session with its five stage rows and its messages. Idempotent: the
   * Session is keyed by importId, stage rows by (session, stage), messages by (session, order).
   * It heartbeats while it runs, so a killed worker's imports are retried after the heartbeat
   * timeout rather than after the whole IMPORT_PROCESSING_TIMEOUT.
   */
  async function processImport(importId: string): Promise<ImportOutcome> {
    const stop = heartbeatWhileRunning(Context.current());
    try {
      return await processImportOnce(importId);
    } finally {
      stop();
    }
  }

  async function processImportOnce(importId: string): Promise<ImportOutcome> {
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
        data: { status: "PROCESSED", processedAt: new Date(), ...LEASE_DONE },
      });

    if (!row.fullTranscriptUrl) {
      await setStage("SKIPPED", { errorMessage: "no transcript URL" });
      await finishImport();
      return { importId, status: "processed", transcript: "skipped", messages: 0 };
    }

    await setStage("IN_PROGRESS");
    let text: string;
    try {
      text = await fetchTranscript(row.fullTranscriptUrl, row.company);
    } catch (error) {
      // Not a failure of this import: the run tries it again once the host has a free slot.
      if (error instanceof SourceHostBusyError) throw hostBusyFailure(error);
      return handleTranscriptFailure(
        error,
        importId,
        session.id,
        row.attempts,
        row.fullTranscriptUrl,
      );
    }

    const messages = parseTranscript(text, zone);
    await db.$transaction([
      db.message.createMany({
        data: messages.map((m) => ({
          sessionId: session.id,
          order: m.order,
          role: m.role,
          content: m.content,
          timestamp: m.timestamp,
        })),
        skipDuplicates: true,
      }),
      db.sessionImport.update({
        where: { id: importId },
        data: {
          // PostgreSQL text cannot hold NUL (parseTranscript drops it from messages too).
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
          metadata: { messages: messages.length },
        },
      }),
    ]);
    return { importId, status: "processed", transcript: "completed", messages: messages.length };
  }

  async function fetchTranscript(url: string, company: CredentialOwner): Promise<string> {
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
    const chunks: Buffer[] = [];
    for await (const chunk of source.body) chunks.push(chunk as Buffer);
    return new TextDecoder("utf-8").decode(Buffer.concat(chunks));
  }

  /**
   * A permanent failure (404, refused credentials, not http) fails the stage now; a transient one
   * is retried by Temporal within the run, then by later runs up to MAX_TRANSCRIPT_ATTEMPTS.
   */
  async function handleTranscriptFailure(
    error: unknown,
    importId: string,
    sessionId: string,
    attemptsSoFar: number,
    url: string,
  ): Promise<ImportOutcome> {
    // Bounded: a 60,000-character URL must not become a 60 KB error row or log line.
    const message = boundText(
      `${describeUrl(url)}: ${error instanceof Error ? error.message : String(error)}`,
    );
    const ctx = Context.current();
    const transient =
      error instanceof TransientSourceError || !(error instanceof PermanentSourceError);
    const lastAttemptOfRun = ctx.info.attempt >= IMPORT_ACTIVITY_MAX_ATTEMPTS;
    if (transient && !lastAttemptOfRun) {
      throw ApplicationFailure.create({ type: "TranscriptUnavailable", message });
    }
    const attempts = attemptsSoFar + 1;
    const final = !transient || attempts >= MAX_TRANSCRIPT_ATTEMPTS;
    await db.$transaction([
      db.sessionProcessingStatus.update({
        where: { sessionId_stage: { sessionId, stage: "TRANSCRIPT_FETCH" } },
        data: {
          status: "FAILED",
          completedAt: new Date(),
          errorMessage: message,
          retryCount: attempts,
        },
      }),
      db.sessionImport.update({
        where: { id: importId },
        data: final
          ? {
              attempts,
              status: "PROCESSED",
              processedAt: new Date(),
              ...LEASE_DONE,
              errorMessage: message,
            }
          : { attempts, errorMessage: message },
      }),
    ]);
    log.warn({ importId, attempts, final, error: message }, "transcript fetch failed");
    return { importId, status: "processed", transcript: "failed", messages: 0, error: message };
  }

  return { listPendingImports, processImport };
}
