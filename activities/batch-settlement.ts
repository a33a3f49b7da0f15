import { Context } from "@temporalio/activity";
import { type AnalysisAnswer, applyAnalysisAnswers } from "./analysis-results.ts";
import type { ActivityDeps } from "./deps.ts";

/**
 * How a batch's requests end, shared by submission (a batch OpenAI refused) and status checks
 * (results, failed and vanished batches): answers applied a chunk per transaction, requests still
 * open requeued or failed for good past AI_MAX_RETRIES, the batch closed without results.
 */

/**
 * Results applied per transaction. Set-based writes cost about the same for 1 row or 500, and a
 * killed worker loses at most one uncommitted chunk, which its retry applies again.
 */
const APPLY_CHUNK = 500;

export function createBatchSettlement({
  db,
  config,
  log,
}: Pick<ActivityDeps, "db" | "config" | "log">) {
  const usdToEur = config.analysis.usdToEur;

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

  /** Releases the batch's open requests (releaseRequests), then closes it with the reason. */
  async function closeBatch(
    batchId: string,
    status: "FAILED" | "CANCELLED",
    reason: string,
  ): Promise<{ requeued: number; failedForGood: number }> {
    const released = await releaseRequests(batchId, reason);
    await db.aIBatchRequest.update({
      where: { id: batchId },
      data: { status, errorMessage: reason, processedAt: new Date() },
    });
    log.warn({ batchId, status, reason }, "batch closed without results");
    return released;
  }

  return { applyInChunks, closeBatch };
}
