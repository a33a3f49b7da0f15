import type OpenAI from "openai";
import type { AnalysisAnswer } from "./analysis-results.ts";

/** Lines of the Batch API's output and error files, and how a batch's failure is worded. */

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
