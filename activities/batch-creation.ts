import { ApplicationFailure } from "@temporalio/activity";
import OpenAI, { toFile } from "openai";
import { Prisma } from "../adapters/db/generated/prisma/client.ts";
import { analysisRequestBody, transcriptForModel } from "../domain/analysis.ts";
import { OPENAI_BATCH_STATUS } from "./batch-lines.ts";
import { createBatchSettlement } from "./batch-settlement.ts";
import type { ActivityDeps } from "./deps.ts";

/**
 * Batch creation on the OpenAI Batch API: find companies with enough waiting requests, claim
 * them into a batch (atomically, so no request is in two batches), upload the JSONL and create
 * the OpenAI batch. Each step is an idempotent activity; batch-status.ts follows the batch up.
 */

export interface ReadyCompaniesInput {
  region?: string | undefined;
  minRequests: number;
  maxWaitMs: number;
  /** Keyset paging: companies after this id, at most `limit` of them. */
  afterId?: string | undefined;
  limit?: number | undefined;
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

export function createBatchCreationActivities(deps: ActivityDeps) {
  const { db, openai, log } = deps;
  const { closeBatch } = createBatchSettlement(deps);

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
        data: {
          openaiBatchId: created.id,
          status: OPENAI_BATCH_STATUS[created.status] ?? "VALIDATING",
        },
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

  return { listCompaniesReadyForBatch, claimBatch, submitBatch };
}
