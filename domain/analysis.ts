import { z } from "zod";

/**
 * What the model is asked for each session and how its answer is checked. The same request
 * body goes to chat completions (direct mode) and into Batch API JSONL lines (batch mode).
 */

export const SESSION_CATEGORIES = [
  "SCHEDULE_HOURS",
  "LEAVE_VACATION",
  "SICK_LEAVE_RECOVERY",
  "SALARY_COMPENSATION",
  "CONTRACT_HOURS",
  "ONBOARDING",
  "OFFBOARDING",
  "WORKWEAR_STAFF_PASS",
  "TEAM_CONTACTS",
  "PERSONAL_QUESTIONS",
  "ACCESS_LOGIN",
  "SOCIAL_QUESTIONS",
  "UNRECOGNIZED_OTHER",
] as const;

export const SENTIMENTS = ["POSITIVE", "NEUTRAL", "NEGATIVE"] as const;

/** JSON schema for structured output (strict: every property required, nothing else allowed). */
export const ANALYSIS_JSON_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: [
    "language",
    "sentiment",
    "escalated",
    "forwarded_hr",
    "category",
    "questions",
    "summary",
  ],
  properties: {
    language: { type: "string", description: "ISO 639-1 code of the conversation's main language" },
    sentiment: { type: "string", enum: [...SENTIMENTS] },
    escalated: { type: "boolean", description: "the user was escalated to a human or manager" },
    forwarded_hr: { type: "boolean", description: "the user was forwarded to HR" },
    category: { type: "string", enum: [...SESSION_CATEGORIES] },
    questions: {
      type: "array",
      items: { type: "string" },
      description: "up to 5 questions the user asked, in English",
    },
    summary: { type: "string", description: "10 to 300 characters" },
  },
} as const;

const SYSTEM_PROMPT = [
  "You analyse a customer-support chat between an employee (User) and an HR assistant.",
  "Answer with JSON only, following the schema:",
  "- language: ISO 639-1 code of the language the user writes in;",
  "- sentiment: POSITIVE, NEUTRAL or NEGATIVE, the user's overall mood;",
  "- escalated: whether the chat was escalated to a human, manager or supervisor;",
  "- forwarded_hr: whether the user was forwarded to HR;",
  `- category: one of ${SESSION_CATEGORIES.join(", ")};`,
  "- questions: up to 5 questions the user asked, rephrased in English;",
  "- summary: one or two sentences, 10 to 300 characters.",
].join("\n");

export interface ChatMessageLike {
  role: string;
  content: string;
}

/** The chat-completions request body for one session. */
export function analysisRequestBody(model: string, transcript: string) {
  return {
    model,
    temperature: 0,
    messages: [
      { role: "system" as const, content: SYSTEM_PROMPT },
      { role: "user" as const, content: transcript },
    ],
    response_format: {
      type: "json_schema" as const,
      json_schema: { name: "session_analysis", strict: true, schema: ANALYSIS_JSON_SCHEMA },
    },
  };
}

/** The transcript as the model sees it: one `Role: text` line per stored message. */
export function transcriptForModel(messages: readonly ChatMessageLike[]): string {
  return messages
    .map((m) =>
      m.role === "unknown"
        ? m.content
        : `${m.role[0]?.toUpperCase()}${m.role.slice(1)}: ${m.content}`,
    )
    .join("\n");
}

const analysisSchema = z
  .object({
    language: z
      .string()
      .trim()
      .toLowerCase()
      .regex(/^[a-z]{2}$/, "expected a two-letter ISO 639-1 code"),
    sentiment: z.enum(SENTIMENTS),
    escalated: z.boolean(),
    forwarded_hr: z.boolean(),
    category: z.enum(SESSION_CATEGORIES),
    questions: z.array(z.string().trim().min(1).max(500)).max(5),
    summary: z.string().trim().min(10).max(300),
  })
  .strict();

export type SessionAnalysis = z.infer<typeof analysisSchema>;

export type AnalysisParse = { ok: true; analysis: SessionAnalysis } | { ok: false; reason: string };

/** Validates the model's answer; an invalid one yields the reason, never an exception. */
export function parseAnalysis(content: string | null | undefined): AnalysisParse {
  if (!content) return { ok: false, reason: "the model returned no content" };
  let json: unknown;
  try {
    json = JSON.parse(content);
  } catch {
    return { ok: false, reason: `the model's answer is not valid JSON: ${content.slice(0, 80)}` };
  }
  const parsed = analysisSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "answer"}: ${i.message}`);
    return {
      ok: false,
      reason: `the model's answer does not match the schema (${issues.join("; ")})`,
    };
  }
  // The same question asked twice is one question.
  const questions = [...new Set(parsed.data.questions)];
  return { ok: true, analysis: { ...parsed.data, questions } };
}

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  cachedTokens: number;
  reasoningTokens: number;
}

/** Reads the usage block of a chat completion (as returned by the API or a batch line). */
export function usageOf(raw: unknown): TokenUsage {
  const usage = (raw ?? {}) as {
    prompt_tokens?: number;
    completion_tokens?: number;
    total_tokens?: number;
    prompt_tokens_details?: { cached_tokens?: number } | null;
    completion_tokens_details?: { reasoning_tokens?: number } | null;
  };
  const promptTokens = usage.prompt_tokens ?? 0;
  const completionTokens = usage.completion_tokens ?? 0;
  return {
    promptTokens,
    completionTokens,
    totalTokens: usage.total_tokens ?? promptTokens + completionTokens,
    cachedTokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
    reasoningTokens: usage.completion_tokens_details?.reasoning_tokens ?? 0,
  };
}

export interface TokenPrices {
  /** USD per prompt token. */
  prompt: number;
  /** USD per completion token. */
  completion: number;
}

/** Cost in EUR; prices are in USD per token. */
export function costEur(usage: TokenUsage, prices: TokenPrices, usdToEur: number): number {
  const usd = usage.promptTokens * prices.prompt + usage.completionTokens * prices.completion;
  return Math.round(usd * usdToEur * 1e8) / 1e8;
}
