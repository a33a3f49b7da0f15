import { Context } from "@temporalio/activity";
import OpenAI from "openai";
import type { AIBatchRequestStatus } from "../adapters/db/generated/prisma/enums.ts";
import type { AnalysisAnswer } from "./analysis-results.ts";
import { createBatchCreationActivities } from "./batch-creation.ts";
import { answerFromLine, batchFailureReason, OPENAI_BATCH_STATUS } from "./batch-lines.ts";
import { createBatchSettlement } from "./batch-settlement.ts";
import type { ActivityDeps } from "./deps.ts";
import { heartbeatWhileRunning } from "./heartbeat.ts";

/**
 * Batch status on the OpenAI Batch API: poll each batch in flight, record its status, and apply
 * its output and error files when it is done, or requeue its requests when it failed. Polling is
 * one short call per scheduled run, so no worker slot waits on OpenAI.
 */

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

/** OpenAI says the thing does not exist (a batch or file it lost, or deleted). */
function isNotFound(error: unknown): boolean {
  return error instanceof OpenAI.APIError && error.status === 404;
}

export function createBatchStatusActivities(deps: ActivityDeps) {
  const { db, openai, log } = deps;
  const { applyInChunks, closeBatch } = createBatchSettlement(deps);
  // checkBatch submits a batch its creating run left unsubmitted (ORPHANED_SUBMIT_MS).
  const { submitBatch } = createBatchCreationActivities(deps);

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
    const status = OPENAI_BATCH_STATUS[remote.status] ?? batch.status;
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
      const closed = remote.status === "cancelled" ? "CANCELLED" : "FAILED";
      const released = await closeBatch(batchId, closed, reason);
      return {
        batchId,
        status: closed,
        // As above: lines a killed earlier attempt applied count too.
        applied: await countApplied(batchId),
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

  async function failUnanswered(batchId: string, reason: string): Promise<number> {
    const open = await db.aIProcessingRequest.findMany({
      where: { batchId, processingStatus: "BATCHING_IN_PROGRESS" },
      select: { id: true },
    });
    await applyInChunks(open.map(({ id }) => ({ requestId: id, kind: "error", error: reason })));
    return open.length;
  }

  /**
   * The provider lost the batch or a result file: results already applied stay, the requests
   * still open go back to the queue (or fail for good past AI_MAX_RETRIES), the batch is FAILED.
   */
  async function closeVanished(batchId: string, reason: string): Promise<BatchCheckResult> {
    const released = await closeBatch(batchId, "FAILED", reason);
    return { batchId, status: "FAILED", applied: await countApplied(batchId), ...released };
  }

  /** The batch's requests applied successfully, by any attempt. */
  function countApplied(batchId: string): Promise<number> {
    return db.aIProcessingRequest.count({
      where: { batchId, processingStatus: "PROCESSING_COMPLETE" },
    });
  }

  return { listBatchesToCheck, checkBatch };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
