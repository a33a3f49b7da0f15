import { SpanStatusCode } from "@opentelemetry/api";
import OpenAI from "openai";
import type { Config } from "./config.ts";
import { inSpan } from "./spans.ts";

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
    fetch: tracedFetch,
  });
}

/** The model named in a chat request's JSON body (the body itself never becomes an attribute). */
function requestedModel(path: string, body: unknown): string | undefined {
  if (!path.endsWith("/chat/completions") || typeof body !== "string") return undefined;
  try {
    const model = (JSON.parse(body) as { model?: unknown }).model;
    return typeof model === "string" ? model : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Every HTTP request the SDK makes (each retry included) in a span `openai POST /v1/...`, a child
 * of the running activity's. Attributes: method, path, host, status, OpenAI's request id and the
 * model; never the API key (a header), the transcript (the body) or a query string.
 */
const tracedFetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
  const url = new URL(input instanceof Request ? input.url : input.toString());
  // The SDK probes `fetch("data:,")` once to learn the Response class before an upload.
  if (url.protocol !== "https:" && url.protocol !== "http:") return fetch(input, init);
  const method = init?.method ?? (input instanceof Request ? input.method : "GET");
  const model = requestedModel(url.pathname, init?.body);
  return inSpan(
    `openai ${method} ${url.pathname}`,
    {
      "gen_ai.system": "openai",
      "http.request.method": method,
      "url.path": url.pathname,
      "server.address": url.hostname,
      ...(model ? { "gen_ai.request.model": model } : {}),
    },
    async (span) => {
      const response = await fetch(input, init);
      span.setAttribute("http.response.status_code", response.status);
      const requestId = response.headers.get("x-request-id");
      if (requestId) span.setAttribute("openai.request_id", requestId.slice(0, 200));
      if (response.status >= 400) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: `HTTP ${response.status}` });
      }
      return response;
    },
  );
};

/** A longer Retry-After than this is taken as this: one header never parks a request for long. */
const MAX_RETRY_AFTER_MS = 5 * 60_000;

/**
 * How long OpenAI asked the caller to wait before the next request, read the way the SDK reads it
 * for its own retries (`retry-after-ms`, else `retry-after` in seconds or as an HTTP date);
 * undefined when the error carries no such header.
 */
export function retryAfterMs(error: unknown, now = Date.now()): number | undefined {
  if (!(error instanceof OpenAI.APIError) || !error.headers) return undefined;
  const headers = error.headers;
  let waitMs = Number.parseFloat(headers.get("retry-after-ms") ?? "");
  if (Number.isNaN(waitMs)) {
    const retryAfter = headers.get("retry-after") ?? "";
    const seconds = Number.parseFloat(retryAfter);
    waitMs = Number.isNaN(seconds) ? Date.parse(retryAfter) - now : seconds * 1000;
  }
  if (!Number.isFinite(waitMs) || waitMs <= 0) return undefined;
  return Math.min(Math.ceil(waitMs), MAX_RETRY_AFTER_MS);
}
