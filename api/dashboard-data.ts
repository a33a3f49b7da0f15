import type { Database } from "../adapters/db/client.ts";
import {
  type AIBatchRequestStatus,
  AIRequestStatus,
  ImportStatus,
  ProcessingStatus,
} from "../adapters/db/generated/prisma/enums.ts";

/** Where the pipeline's work stands, for the dashboard: plain counts by status. */
export interface PipelineCounts {
  imports: Record<ImportStatus, number>;
  /** Sessions by the status of their AI_ANALYSIS stage. */
  analysis: Record<ProcessingStatus, number>;
  requests: Record<AIRequestStatus, number>;
  /** OpenAI batches not yet final, by status. */
  batchesInFlight: Partial<Record<AIBatchRequestStatus, number>>;
}

const FINAL_BATCH: AIBatchRequestStatus[] = ["PROCESSED", "FAILED", "CANCELLED"];

function zeros<K extends string>(keys: Record<string, K>): Record<K, number> {
  return Object.fromEntries(Object.values(keys).map((key) => [key, 0])) as Record<K, number>;
}

export async function pipelineCounts(db: Database): Promise<PipelineCounts> {
  const [imports, analysis, requests, batches] = await Promise.all([
    db.sessionImport.groupBy({ by: ["status"], _count: { _all: true } }),
    db.sessionProcessingStatus.groupBy({
      by: ["status"],
      where: { stage: "AI_ANALYSIS" },
      _count: { _all: true },
    }),
    db.aIProcessingRequest.groupBy({ by: ["processingStatus"], _count: { _all: true } }),
    db.aIBatchRequest.groupBy({
      by: ["status"],
      where: { status: { notIn: FINAL_BATCH } },
      _count: { _all: true },
    }),
  ]);
  const counts: PipelineCounts = {
    imports: zeros(ImportStatus),
    analysis: zeros(ProcessingStatus),
    requests: zeros(AIRequestStatus),
    batchesInFlight: {},
  };
  for (const row of imports) counts.imports[row.status] = row._count._all;
  for (const row of analysis) counts.analysis[row.status] = row._count._all;
  for (const row of requests) counts.requests[row.processingStatus] = row._count._all;
  for (const row of batches) counts.batchesInFlight[row.status] = row._count._all;
  return counts;
}
