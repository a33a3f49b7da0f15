import { ApplicationFailure, Context } from "@temporalio/activity";
import OpenAI, { toFile } from "openai";
import { Prisma } from "../adapters/db/generated/prisma/client.ts";
import type { AIBatchRequestStatus } from "../adapters/db/generated/prisma/enums.ts";
import { analysisRequestBody, transcriptForModel } from "../domain/analysis.ts";
import { type AnalysisAnswer, applyAnalysisAnswers } from "./analysis-results.ts";
import { answerFromLine, batchFailureReason } from "./batch-lines.ts";
import type { ActivityDeps } from "./deps.ts";
import { heartbeatWhileRunning } from "./heartbeat.ts";

export { answerFromLine } from "./batch-lines.ts";

/**
 * The OpenAI Batch API path: claim waiting requests into a batch (atomically, so no request is
 * in two batches), upload the JSONL, create the batch, poll it, and apply its output and error
 * files. Each step is an idempotent activity; polling is one short call per scheduled run, so
 * no worker slot waits on OpenAI.
 */

export interface ReadyCompaniesInput {
  region?: string | undefined;
  minRequests: number;
  maxWaitMs: number;
  /** Keyset paging: companies after this id, at most `limit` of them. */
  afterId?: string | undefined;
  limit?: number | undefined;
}

export interface BatchCheckResult {
  batchId: string;
  status: AIBatchRequestStatus;
  applied?: number;
  failed?: number;
  requeued?: number;
  failedForGood?: number;
}

const IN_FLIGHT: AIBatchRequestStatus[] = [
  "PENDING",
  "UPLOADING",
  "VALIDATING",
  "IN_PROGRESS",
  "FINALIZING",
  "COMPLETED",
];
/** A batch stuck before submission this long (its creating run died) is submitted by a check run. */
const ORPHANED_SUBMIT_MS = 10 * 60_000;
/**
 * Results applied per transaction. Set-based writes cost about the same for 1 row or 500, and a
 * killed worker loses at most one uncommitted chunk, which its retry applies again.
 */
const APPLY_CHUNK = 500;

const OPENAI_STATUS: Record<string, AIBatchRequestStatus | undefined> = {
  validating: "VALIDATING",
  in_progress: "IN_PROGRESS",
  finalizing: "FINALIZING",
  completed: "COMPLETED",
  failed: "FAILED",
  expired: "FAILED",
  cancelling: undefined,
  cancelled: "CANCELLED",
};

/** OpenAI says the thing does not exist (a batch or file it lost, or deleted). */
function isNotFound(error: unknown): boolean {
  return error instanceof OpenAI.APIError && error.status === 404;
}

function isPermanentApiError(error: unknown): boolean {
  return (
    error instanceof OpenAI.APIError &&
    error.status !== undefined &&
    error.status >= 400 &&
    error.status < 500 &&
    ![408, 409, 429].includes(error.status)
  );
}

export function createBatchProcessingActivities({ db, config, openai, log }: ActivityDeps) {
  const usdToEur = config.analysis.usdToEur;

  async function listCompaniesReadyForBatch(input: ReadyCompaniesInput): Promise<string[]> {
    // Paged in company-id order when a page size is given (a run of any size stays within
    // Temporal's payload limits); in one piece, oldest waiting first, for runs started before.
    const rows = await db.$queryRaw<{ companyId: string }[]>`
      SELECT r."companyId"
      FROM "AIProcessingRequest" r
      JOIN "Company" c ON c.id = r."companyId"
      WHERE r."processingStatus" = 'PENDING_BATCHING' AND c.status = 'ACTIVE'
        ${input.region ? Prisma.sql`AND c.region = ${input.region}` : Prisma.empty}
        ${input.afterId ? Prisma.sql`AND r."companyId" > ${input.afterId}::uuid` : Prisma.empty}
      GROUP BY r."companyId"
      HAVING count(*) >= ${input.minRequests}
          OR min(r."requestedAt") <= now() - make_interval(secs => ${input.maxWaitMs / 1000})
      ${input.limit ? Prisma.sql`ORDER BY r."companyId" LIMIT ${input.limit}` : Prisma.sql`ORDER BY min(r."requestedAt")`}`;
    return rows.map((r) => r.companyId);
  }

  /**
   * Moves up to maxRequests waiting requests of one company into a new local batch. Rows are
   * locked with SKIP LOCKED, so two overlapping runs never take the same request.
   */
  async function claimBatch(input: {
    companyId: string;
    maxRequests: number;
  }): Promise<{ batchId: string; requests: number } | null> {
    return db.$transaction(async (tx) => {
      const claimed = await tx.$queryRaw<{ id: string }[]>`
        SELECT id FROM "AIProcessingRequest"
        WHERE "companyId" = ${input.companyId}::uuid AND "processingStatus" = 'PENDING_BATCHING'
        ORDER BY "requestedAt", id
        LIMIT ${input.maxRequests}
        FOR UPDATE SKIP LOCKED`;
      if (claimed.length === 0) return null;
      const batch = await tx.aIBatchRequest.create({
        data: { companyId: input.companyId, status: "PENDING", requestCount: claimed.length },
      });
      await tx.aIProcessingRequest.updateMany({
        where: { id: { in: claimed.map((r) => r.id) } },
        data: { processingStatus: "BATCHING_IN_PROGRESS", batchId: batch.id },
      });
      return { batchId: batch.id, requests: claimed.length };
    });
  }

  /** Uploads the JSONL and creates the OpenAI batch; each id is stored as soon as it exists. */
  async function submitBatch(batchId: string): Promise<{ openaiBatchId: string | null }> {
    const batch = await db.aIBatchRequest.findUniqueOrThrow({ where: { id: batchId } });
    if (batch.openaiBatchId) return { openaiBatchId: batch.openaiBatchId };
    if (batch.status !== "PENDING" && batch.status !== "UPLOADING") return { openaiBatchId: null };
    try {
      let inputFileId = batch.inputFileId;
      if (!inputFileId) {
        const jsonl = await buildJsonl(batchId);
        const file = await openai.files.create({
          file: await toFile(Buffer.from(jsonl), `livedash-batch-${batchId}.jsonl`),
          purpose: "batch",
        });
        inputFileId = file.id;
        await db.aIBatchRequest.update({
          where: { id: batchId },
          data: { inputFileId, status: "UPLOADING" },
        });
      }
      const created = await openai.batches.create({
        input_file_id: inputFileId,
        endpoint: "/v1/chat/completions",
        completion_window: "24h",
        metadata: { livedash_batch_id: batchId },
      });
      await db.aIBatchRequest.update({
        where: { id: batchId },
        data: { openaiBatchId: created.id, status: OPENAI_STATUS[created.status] ?? "VALIDATING" },
      });
      log.info(
        { batchId, openaiBatchId: created.id, requests: batch.requestCount },
        "OpenAI batch created",
      );
      return { openaiBatchId: created.id };
    } catch (error) {
      const reason = `batch submission failed: ${error instanceof Error ? error.message : String(error)}`;
      if (!isPermanentApiError(error))
        throw ApplicationFailure.create({ type: "BatchSubmitUnavailable", message: reason });
      await closeBatch(batchId, "FAILED", reason);
      return { openaiBatchId: null };
    }
  }

  async function buildJsonl(batchId: string): Promise<string> {
    const requests = await db.aIProcessingRequest.findMany({
      where: { batchId },
      orderBy: { requestedAt: "asc" },
      select: {
        id: true,
        model: true,
        session: { select: { messages: { orderBy: { order: "asc" } } } },
      },
    });
    return requests
      .map((r) =>
        JSON.stringify({
          custom_id: r.id,
          method: "POST",
          url: "/v1/chat/completions",
          body: analysisRequestBody(r.model, transcriptForModel(r.session.messages)),
        }),
      )
      .join("\n");
  }

  async function listBatchesToCheck(input: {
    region?: string | undefined;
    afterId?: string | undefined;
    limit?: number | undefined;
  }): Promise<string[]> {
    const batches = await db.aIBatchRequest.findMany({
      where: {
        status: { in: IN_FLIGHT },
        company: input.region ? { region: input.region } : {},
        ...(input.afterId ? { id: { gt: input.afterId } } : {}),
      },
      // Paged by id when a page size is given; oldest first in one piece for older runs.
      orderBy: input.limit ? { id: "asc" } : { createdAt: "asc" },
      ...(input.limit ? { take: input.limit } : {}),
      select: { id: true },
    });
    return batches.map((b) => b.id);
  }

  /**
   * One look at one batch: record its status, apply it when done, requeue it when it failed.
   * Heartbeats its progress while it runs (downloads and long applies included), so a killed
   * worker's check is retried after the heartbeat timeout; a retry re-reads the files and skips
   * the lines already applied.
   */
  async function checkBatch(batchId: string): Promise<BatchCheckResult> {
    const progress = { completed: 0, failed: 0 };
    const stop = heartbeatWhileRunning(Context.current(), () => progress);
    try {
      return await checkBatchOnce(batchId, progress);
    } finally {
      stop();
    }
  }

  async function checkBatchOnce(
    batchId: string,
    progress: { completed: number; failed: number },
  ): Promise<BatchCheckResult> {
    const batch = await db.aIBatchRequest.findUniqueOrThrow({ where: { id: batchId } });
    if (!batch.openaiBatchId) {
      if (Date.now() - batch.updatedAt.getTime() > ORPHANED_SUBMIT_MS) await submitBatch(batchId);
      return { batchId, status: batch.status };
    }
    let remote: OpenAI.Batches.Batch;
    try {
      remote = await openai.batches.retrieve(batch.openaiBatchId);
    } catch (error) {
      // Retrying cannot bring it back: fail it now (not with a retryable error that holds the
      // run for minutes), and its requests go back to the queue under AI_MAX_RETRIES.
      if (!isNotFound(error)) throw error;
      const reason = `OpenAI has no batch ${batch.openaiBatchId} (404 on retrieve): ${errorText(error)}`;
      return closeVanished(batchId, reason);
    }
    const status = OPENAI_STATUS[remote.status] ?? batch.status;
    await db.aIBatchRequest.update({
      where: { id: batchId },
      data: {
        status,
        outputFileId: remote.output_file_id ?? null,
        errorFileId: remote.error_file_id ?? null,
        ...(remote.completed_at ? { completedAt: new Date(remote.completed_at * 1000) } : {}),
      },
    });

    if (remote.status === "completed") {
      const { missing } = await applyBatchFiles(
        batchId,
        remote.output_file_id,
        remote.error_file_id,
        progress,
      );
      // A result file OpenAI no longer has: what it held is lost, so its requests are retried.
      if (missing) return closeVanished(batchId, missing);
      // Anything the files did not mention cannot be left in flight.
      await failUnanswered(batchId, "no result for this request in the batch output or error file");
      await db.aIBatchRequest.update({
        where: { id: batchId },
        data: { status: "PROCESSED", processedAt: new Date() },
      });
      // Counted in the database, not by this attempt: a retry after a killed worker skips the
      // lines the dead attempt applied, and those are this batch's results all the same.
      const [applied, failed] = await Promise.all(
        (["PROCESSING_COMPLETE", "PROCESSING_FAILED"] as const).map((processingStatus) =>
          db.aIProcessingRequest.count({ where: { batchId, processingStatus } }),
        ),
      );
      return { batchId, status: "PROCESSED", applied, failed };
    }
    if (
      remote.status === "failed" ||
      remote.status === "expired" ||
      remote.status === "cancelled"
    ) {
      // An expired batch may still have finished some lines: keep those.
      const applied = await applyBatchFiles(batchId, remote.output_file_id, null, progress);
      const reason = [batchFailureReason(remote), applied.missing].filter(Boolean).join("; ");
      const released = await releaseRequests(batchId, reason);
      await closeBatch(
        batchId,
        remote.status === "cancelled" ? "CANCELLED" : "FAILED",
        reason,
        false,
      );
      return {
        batchId,
        status: remote.status === "cancelled" ? "CANCELLED" : "FAILED",
        // As above: lines a killed earlier attempt applied count too.
        applied: await db.aIProcessingRequest.count({
          where: { batchId, processingStatus: "PROCESSING_COMPLETE" },
        }),
        // Lines that finished with an invalid answer failed their request: the run counts them.
        failed: applied.failed,
        ...released,
      };
    }
    return { batchId, status };
  }

  async function applyBatchFiles(
    batchId: string,
    outputFileId: string | null | undefined,
    errorFileId: string | null | undefined,
    totals: { completed: number; failed: number },
  ): Promise<{ completed: number; failed: number; missing?: string }> {
    for (const [kind, fileId] of [
      ["output", outputFileId],
      ["error", errorFileId],
    ] as const) {
      if (!fileId) continue;
      let text: string;
      try {
        text = await (await openai.files.content(fileId)).text();
      } catch (error) {
        if (!isNotFound(error)) throw error;
        const missing = `OpenAI has no ${kind} file ${fileId} of this batch (404): ${errorText(error)}`;
        return { ...totals, missing };
      }
      const answers: AnalysisAnswer[] = [];
      for (const line of text.split("\n")) {
        if (line.trim() === "") continue;
        const answer = answerFromLine(line);
        if (answer) answers.push(answer);
        else log.warn({ batchId, line: line.slice(0, 200) }, "unreadable batch result line");
      }
      await applyInChunks(answers, totals);
    }
    return totals;
  }

  /**
   * Applies answers a chunk per transaction. With `totals`, adds the chunk's results to them and
   * heartbeats them after each chunk.
   */
  async function applyInChunks(
    answers: readonly AnalysisAnswer[],
    totals?: { completed: number; failed: number },
  ): Promise<void> {
    for (let start = 0; start < answers.length; start += APPLY_CHUNK) {
      const counts = await applyAnalysisAnswers(
        db,
        answers.slice(start, start + APPLY_CHUNK),
        usdToEur,
      );
      if (!totals) continue;
      totals.completed += counts.completed;
      totals.failed += counts.failed;
      Context.current().heartbeat(totals);
    }
  }

  async function failUnanswered(batchId: string, reason: string): Promise<number> {
    const open = await db.aIProcessingRequest.findMany({
      where: { batchId, processingStatus: "BATCHING_IN_PROGRESS" },
      select: { id: true },
    });
    await applyInChunks(open.map(({ id }) => ({ requestId: id, kind: "error", error: reason })));
    return open.length;
  }

  /** Requests of a failed batch go back to the queue, or fail for good past the retry limit. */
  async function releaseRequests(
    batchId: string,
    reason: string,
  ): Promise<{ requeued: number; failedForGood: number }> {
    const open = await db.aIProcessingRequest.findMany({
      where: { batchId, processingStatus: "BATCHING_IN_PROGRESS" },
      select: { id: true, retryCount: true },
    });
    const exhausted = open.filter((r) => r.retryCount + 1 > config.analysis.maxRetries);
    const retry = open.filter((r) => r.retryCount + 1 <= config.analysis.maxRetries);
    if (retry.length > 0) {
      await db.aIProcessingRequest.updateMany({
        where: { id: { in: retry.map((r) => r.id) }, processingStatus: "BATCHING_IN_PROGRESS" },
        data: {
          processingStatus: "PENDING_BATCHING",
          batchId: null,
          retryCount: { increment: 1 },
          errorMessage: reason,
        },
      });
    }
    if (exhausted.length > 0) {
      await db.aIProcessingRequest.updateMany({
        where: { id: { in: exhausted.map((r) => r.id) } },
        data: { retryCount: { increment: 1 } },
      });
      const error = `${reason}; gave up after ${config.analysis.maxRetries} retries`;
      await applyInChunks(exhausted.map(({ id }) => ({ requestId: id, kind: "error", error })));
    }
    return { requeued: retry.length, failedForGood: exhausted.length };
  }

  /**
   * The provider lost the batch or a result file: results already applied stay, the requests
   * still open go back to the queue (or fail for good past AI_MAX_RETRIES), the batch is FAILED.
   */
  async function closeVanished(batchId: string, reason: string): Promise<BatchCheckResult> {
    const released = await releaseRequests(batchId, reason);
    await closeBatch(batchId, "FAILED", reason, false);
    return {
      batchId,
      status: "FAILED",
      applied: await db.aIProcessingRequest.count({
        where: { batchId, processingStatus: "PROCESSING_COMPLETE" },
      }),
      ...released,
    };
  }

  async function closeBatch(
    batchId: string,
    status: "FAILED" | "CANCELLED",
    reason: string,
    release = true,
  ) {
    if (release) await releaseRequests(batchId, reason);
    await db.aIBatchRequest.update({
      where: { id: batchId },
      data: { status, errorMessage: reason, processedAt: new Date() },
    });
    log.warn({ batchId, status, reason }, "batch closed without results");
  }

  return { listCompaniesReadyForBatch, claimBatch, submitBatch, listBatchesToCheck, checkBatch };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
