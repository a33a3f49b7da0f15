/**
 * The analysis variables: OpenAI connection, model, batch or direct mode, its pace and retries,
 * and the currency rate costs are reported in. One area of the configuration schema (schema.ts
 * joins them).
 */
import { z } from "zod";
import { int, number, oneOf, optionalText, optionalUrl } from "./env-values.ts";

export const openaiEnv = z.object({
  ANALYSIS_MODE: oneOf(["batch", "direct"], "batch", "batch or direct"),
  ANALYSIS_MAX_CONCURRENT: int(20, 1, 1_000),
  OPENAI_REQUESTS_PER_SECOND: int(0, 0, 100_000),
  ANALYSIS_RETRY_INTERVAL_MS: int(2_000, 100, 300_000),
  AI_MAX_RETRIES: int(3, 0, 20),
  OPENAI_MODEL: optionalText.transform((model) => model ?? "gpt-4o-mini"),
  // Number() semantics ("1e-1" passes), as it always had.
  USD_TO_EUR_RATE: number(
    (rate) => Number.isFinite(rate) && rate > 0,
    "a positive number",
  ).transform((rate) => rate ?? 0.85),
  OPENAI_API_KEY: optionalText,
  OPENAI_BASE_URL: optionalUrl(["http:", "https:"]),
});

/** The `analysis` and `openai` parts of Config. */
export function openaiSection(e: z.output<typeof openaiEnv>) {
  return {
    analysis: {
      mode: e.ANALYSIS_MODE,
      /** Direct mode: chat completions at once per session-processing worker replica. */
      maxConcurrent: e.ANALYSIS_MAX_CONCURRENT,
      /** Direct mode: model calls per second across every replica (0: no limit). */
      requestsPerSecond: e.OPENAI_REQUESTS_PER_SECOND,
      /** Direct mode: wait before a failed model call's second attempt; doubles after that. */
      retryIntervalMs: e.ANALYSIS_RETRY_INTERVAL_MS,
      /** Times a request goes back to the queue after its batch failed, expired or was cancelled. */
      maxRetries: e.AI_MAX_RETRIES,
      /** Model when a company has no default model of its own. */
      fallbackModel: e.OPENAI_MODEL,
      usdToEur: e.USD_TO_EUR_RATE,
    },
    openai: { apiKey: e.OPENAI_API_KEY, baseUrl: e.OPENAI_BASE_URL },
  };
}
