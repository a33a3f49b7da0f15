/**
 * The stand-in's "model": validates a chat-completions body the way OpenAI does up front
 * (model, messages, no streaming, json_schema name and strict-schema rules), takes the last
 * user message as the transcript, answers with analyseTranscript as JSON (or a deliberately
 * malformed answer when the behaviour says so) and wraps it in a ChatCompletion with plausible
 * usage. Pure apart from ids and the clock; shared by the endpoint and by batch lines.
 */

import type { ChatCompletion } from "openai/resources/chat/completions";
import { type Analysis, analyseTranscript } from "./analysis.ts";
import type { Behaviour } from "./behaviour.ts";
import { badRequest, HttpError } from "./errors.ts";
import { isRecord } from "./json-values.ts";
import { randomId, seconds } from "./random.ts";
import type { ErrorBody, MalformedOutputKind } from "./types.ts";

export type ChatOutcome = { status: 200; body: ChatCompletion } | { status: 400; body: ErrorBody };

export interface ChatRequest {
  model: string;
  messages: { role: string; text: string }[];
}

/** Text of a message's content: a string, or the text parts of a content array. */
function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .filter((part) => isRecord(part) && part.type === "text" && typeof part.text === "string")
    .map((part) => (part as { text: string }).text)
    .join("\n");
}

export function parseChatRequest(body: unknown): ChatRequest {
  if (!isRecord(body)) throw badRequest("The request body must be a JSON object.");
  const { model, messages } = body;
  if (typeof model !== "string" || model === "") {
    throw badRequest("you must provide a model parameter", "model", "missing_required_parameter");
  }
  if (!Array.isArray(messages) || messages.length === 0) {
    throw badRequest("'messages' must contain at least one message.", "messages", "invalid_value");
  }
  if (body.stream === true) {
    throw badRequest("The stand-in does not support streaming.", "stream", "unsupported_value");
  }
  validateResponseFormat(body.response_format);
  return { model, messages: messages.map(parseMessage) };
}

function parseMessage(message: unknown, index: number): { role: string; text: string } {
  if (!isRecord(message) || typeof message.role !== "string") {
    throw badRequest(
      `Invalid value for 'messages[${index}]': expected an object with a role.`,
      `messages[${index}]`,
      "invalid_value",
    );
  }
  return { role: message.role, text: contentText(message.content) };
}

/**
 * The fields OpenAI rejects up front: a json_schema needs a valid name and an object schema,
 * and strict mode needs additionalProperties false with every property required (top level).
 */
function validateResponseFormat(format: unknown): void {
  if (format === undefined || format === null) return;
  if (!isRecord(format) || typeof format.type !== "string") {
    throw badRequest(
      "Invalid 'response_format': expected an object with a type.",
      "response_format",
    );
  }
  if (format.type !== "json_schema") return;
  const spec = format.json_schema;
  if (!isRecord(spec)) {
    throw badRequest(
      "Missing required parameter: 'response_format.json_schema'.",
      "response_format.json_schema",
    );
  }
  if (typeof spec.name !== "string" || !/^[a-zA-Z0-9_-]{1,64}$/.test(spec.name)) {
    throw badRequest(
      "Invalid 'response_format.json_schema.name': " +
        "must be 1-64 characters of a-z, A-Z, 0-9, _ or -.",
      "response_format.json_schema.name",
      "invalid_value",
    );
  }
  if (spec.schema !== undefined && !isRecord(spec.schema)) {
    throw badRequest(
      "Invalid 'response_format.json_schema.schema'.",
      "response_format.json_schema.schema",
    );
  }
  if (spec.strict === true && isRecord(spec.schema)) validateStrictSchema(spec.name, spec.schema);
}

function validateStrictSchema(name: string, schema: Record<string, unknown>): void {
  const invalid = (detail: string) =>
    badRequest(
      `Invalid schema for response_format '${name}': In context=(), ${detail}`,
      "response_format",
      "invalid_json_schema",
    );
  if (schema.additionalProperties !== false) {
    throw invalid("'additionalProperties' is required to be supplied and to be false.");
  }
  const properties = isRecord(schema.properties) ? Object.keys(schema.properties) : [];
  const required = Array.isArray(schema.required) ? schema.required : [];
  const missing = properties.find((property) => !required.includes(property));
  if (missing !== undefined) {
    throw invalid(
      "'required' is required to be supplied and to be an array including every key in " +
        `properties. Missing '${missing}'.`,
    );
  }
}

/** The transcript is the content of the last user message. */
export function transcriptOf(request: ChatRequest): string {
  const users = request.messages.filter((message) => message.role === "user");
  return users.at(-1)?.text ?? "";
}

export function matches(needle: string | undefined, ...haystacks: string[]): boolean {
  return needle !== undefined && needle !== "" && haystacks.some((text) => text.includes(needle));
}

function answerContent(analysis: Analysis, malformed: MalformedOutputKind | undefined): string {
  const json = JSON.stringify(analysis);
  if (malformed === "invalid_json") return json.slice(0, Math.max(1, Math.floor(json.length / 2)));
  if (malformed === "missing_fields") {
    const { category: _category, summary: _summary, ...partial } = analysis;
    return JSON.stringify(partial);
  }
  return json;
}

function buildCompletion(request: ChatRequest, content: string): ChatCompletion {
  const promptChars = request.messages.reduce((sum, message) => sum + message.text.length, 0);
  const promptTokens = Math.ceil(promptChars / 4) + 3 * request.messages.length;
  const completionTokens = Math.ceil(content.length / 4);
  return {
    id: `chatcmpl-${randomId(29)}`,
    object: "chat.completion",
    created: seconds(Date.now()),
    model: request.model,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content, refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: "stop",
      },
    ],
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: 0,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    },
    service_tier: "default",
    system_fingerprint: "fp_standin",
  };
}

export function runChatCompletion(body: unknown, behaviour: Behaviour, customId = ""): ChatOutcome {
  let request: ChatRequest;
  try {
    request = parseChatRequest(body);
  } catch (error) {
    if (error instanceof HttpError) return { status: 400, body: error.body };
    throw error;
  }
  const transcript = transcriptOf(request);
  const malformed = matches(behaviour.malformedOutputMatching, transcript, customId)
    ? behaviour.malformedOutputKind
    : undefined;
  const content = answerContent(analyseTranscript(transcript), malformed);
  return { status: 200, body: buildCompletion(request, content) };
}

/** The transcript of a raw chat-completions body, if it is one. */
export function transcriptOfBody(buffer: Buffer): string | undefined {
  try {
    return transcriptOf(parseChatRequest(JSON.parse(buffer.toString("utf8"))));
  } catch {
    return undefined;
  }
}

export function safeTranscript(body: unknown): string {
  try {
    return transcriptOf(parseChatRequest(body));
  } catch {
    return "";
  }
}
