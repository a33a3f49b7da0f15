/**
 * Batch files, line by line (JSONL): validating an input file the way the Batch API does before
 * running anything (each line is its own JSON object, errors name their line number), running a
 * line through the chat "model" or the line-failure knobs, and writing output/error lines,
 * including deliberately corrupt ones (cut in half) and batch_expired lines. Hand-written rather
 * than a JSONL library because per-line errors and deliberately broken lines are the point.
 */

import type { BatchError } from "openai/resources/batches";
import type { ChatCompletion } from "openai/resources/chat/completions";
import type { Behaviour } from "./behaviour.ts";
import { matches, runChatCompletion, safeTranscript } from "./chat-completion.ts";
import { errorBody, serverErrorBody } from "./errors.ts";
import { isRecord } from "./json-values.ts";
import { randomId, requestId } from "./random.ts";
import type { BatchOutputLine, ErrorBody } from "./types.ts";

const MAX_REPORTED_LINE_ERRORS = 100;

export interface LineResult {
  lineId: string;
  customId: string;
  requestId: string;
  statusCode: number;
  body: ChatCompletion | ErrorBody;
  /** Written to its file as broken JSON (a line cut in half). */
  corrupt: boolean;
}

export interface BatchInputLine {
  customId: string;
  body: unknown;
}

/** Validates a JSONL input file the way the Batch API does before running anything. */
export function parseBatchInput(
  content: string,
  endpoint: string,
): { lines: BatchInputLine[]; errors: BatchError[] } {
  const lines: BatchInputLine[] = [];
  const errors: BatchError[] = [];
  const seen = new Set<string>();
  const rawLines = content.split("\n");
  for (let index = 0; index < rawLines.length; index++) {
    const raw = (rawLines[index] ?? "").trim();
    if (raw === "") continue;
    const parsed = parseBatchLine(raw, endpoint, index + 1, seen);
    if ("customId" in parsed) lines.push(parsed);
    else errors.push(parsed);
  }
  if (lines.length === 0 && errors.length === 0) {
    errors.push({
      code: "empty_file",
      message: "The batch input file is empty.",
      param: null,
      line: null,
    });
  }
  return { lines, errors: errors.slice(0, MAX_REPORTED_LINE_ERRORS) };
}

function parseBatchLine(
  raw: string,
  endpoint: string,
  line: number,
  seen: Set<string>,
): BatchInputLine | BatchError {
  const fail = (code: string, message: string, param: string | null = null): BatchError => ({
    code,
    message,
    param,
    line,
  });
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return fail("invalid_json_line", "This line is not parseable as valid JSON.");
  }
  if (!isRecord(value)) return fail("invalid_json_line", "Each line must be a JSON object.");
  const { custom_id: customId, method, url, body } = value;
  if (typeof customId !== "string" || customId === "") {
    return fail(
      "missing_required_parameter",
      "Missing required parameter: 'custom_id'.",
      "custom_id",
    );
  }
  if (method !== "POST") {
    return fail("invalid_value", "The only supported method is POST.", "method");
  }
  if (url !== endpoint) {
    return fail("mismatched_endpoint", `The url must match the batch endpoint ${endpoint}.`, "url");
  }
  if (!isRecord(body)) {
    return fail("missing_required_parameter", "Missing required parameter: 'body'.", "body");
  }
  if (seen.has(customId)) {
    return fail(
      "duplicate_custom_id",
      "The custom_id for this request is a duplicate of another request.",
      "custom_id",
    );
  }
  seen.add(customId);
  return { customId, body };
}

export function runBatchLine(line: BatchInputLine, behaviour: Behaviour): LineResult {
  const ids = {
    lineId: `batch_req_${randomId(24)}`,
    customId: line.customId,
    requestId: requestId(),
  };
  const transcript = safeTranscript(line.body);
  const corrupt = matches(behaviour.corruptLinesMatching, line.customId, transcript);
  if (matches(behaviour.failLinesMatching, line.customId, transcript)) {
    const body =
      behaviour.failLinesStatus === 400
        ? errorBody(
            "The request was rejected (simulated by the stand-in).",
            "invalid_request_error",
          )
        : serverErrorBody();
    return { ...ids, statusCode: behaviour.failLinesStatus, body, corrupt };
  }
  const outcome = runChatCompletion(line.body, behaviour, line.customId);
  return { ...ids, statusCode: outcome.status, body: outcome.body, corrupt };
}

export function isSuccess(result: LineResult): result is LineResult & { body: ChatCompletion } {
  return result.statusCode === 200;
}

export function outputLine(result: LineResult): BatchOutputLine {
  return {
    id: result.lineId,
    custom_id: result.customId,
    response: { status_code: result.statusCode, request_id: result.requestId, body: result.body },
    error: null,
  };
}

export function expiredLine(result: LineResult): BatchOutputLine {
  return {
    id: result.lineId,
    custom_id: result.customId,
    response: null,
    error: {
      code: "batch_expired",
      message: "This request could not be executed before the completion window expired.",
    },
  };
}

export function jsonLine(line: BatchOutputLine): string {
  return `${JSON.stringify(line)}\n`;
}

/** A result as written to its file; a corrupt one is cut in half (its custom_id still shows). */
export function writtenLine(result: LineResult): string {
  const json = JSON.stringify(outputLine(result));
  return `${result.corrupt ? json.slice(0, Math.floor(json.length / 2)) : json}\n`;
}
