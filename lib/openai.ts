import OpenAI from "openai";
import type { Config } from "./config.ts";

/** Without a key the platform talks to the local stand-in (OPENAI_BASE_URL), never to OpenAI. */
export const STAND_IN_API_KEY = "stand-in-no-key";

export function createOpenAIClient(config: Config): OpenAI {
  return new OpenAI({
    apiKey: config.openai.apiKey ?? STAND_IN_API_KEY,
    ...(config.openai.baseUrl ? { baseURL: config.openai.baseUrl } : {}),
    // The SDK retries 408/409/429/5xx honouring retry-after; Temporal retries on top, bounded.
    maxRetries: 2,
    // Three tries of 90 s (plus backoff) fit in the direct-analysis activity's 5 minutes, so the
    // SDK gives up, with its own error, before Temporal times the attempt out.
    timeout: 90_000,
  });
}
