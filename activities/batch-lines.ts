import type OpenAI from "openai";
import type { AIBatchRequestStatus } from "../adapters/db/generated/prisma/enums.ts";
import type { AnalysisAnswer } from "./analysis-results.ts";

/**
 * The Batch API's objects in LiveDash's terms: lines of its output and error files, its batch
 * statuses, and how a batch's failure is worded.
 */

/** An OpenAI batch status as the local one; none for cancelling, where the caller keeps its own. */
export const OPENAI_BATCH_STATUS: Record<string, AIBatchRequestStatus | undefined> = {
  validating: "VALIDATING",
  in_progress: "IN_PROGRESS",
  finalizing: "FINALIZING",
  completed: "COMPLETED",
  failed: "FAILED",
  expired: "FAILED",
  cancelling: undefined,
  cancelled: "CANCELLED",
};

interface BatchLine {
  custom_id?: string;
  response?: {
    status_code?: number;
    body?: {
      choices?: { message?: { content?: string | null } }[];
      usage?: unknown;
      error?: { message?: string };
    };
  } | null;
  error?: { code?: string; message?: string } | null;
}

/** One line of an output or error file, as an answer for its request (joined on custom_id). */
export function answerFromLine(line: string): AnalysisAnswer | undefined {
  let parsed: BatchLine;
  try {
    parsed = JSON.parse(line) as BatchLine;
  } catch {
    return undefined;
  }
  const requestId = parsed.custom_id;
  if (!requestId) return undefined;
  const status = parsed.response?.status_code;
  if (parsed.error || !parsed.response || status === undefined || status >= 300) {
    const message =
      parsed.error?.message ?? parsed.response?.body?.error?.message ?? "unknown error";
    return {
      requestId,
      kind: "error",
      error: `batch line failed (${status ?? parsed.error?.code ?? "no response"}): ${message}`,
    };
  }
  const body = parsed.response.body;
  return {
    requestId,
    kind: "answer",
    content: body?.choices?.[0]?.message?.content ?? null,
    usage: body?.usage,
  };
}

export function batchFailureReason(remote: OpenAI.Batches.Batch): string {
  const first = remote.errors?.data?.[0];
  const detail = first ? `: ${first.code ?? ""} ${first.message ?? ""}`.trimEnd() : "";
  return `OpenAI batch ${remote.id} ${remote.status}${detail}`;
}
