/**
 * What every request goes through before a route answers it, as Hono middleware in order:
 * record it (count it under its route, log its arrival, and on the way out log its outcome and
 * add OpenAI's x-request-id / openai-version / openai-processing-ms headers), wait out the
 * configured latency, check the API key, and answer unknown routes with OpenAI's 404. Fault
 * injection (fault-injection.ts) runs between the key check and the 404, so unknown routes can
 * fail too. Also the app-wide error handler that turns HttpError into its answer.
 */

import { setTimeout as sleep } from "node:timers/promises";
import type { Context, ErrorHandler, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { errorBody, HttpError, serverErrorBody } from "./errors.ts";
import { requestId } from "./random.ts";
import type { StandInEnv, StandInState } from "./state.ts";

const UNMATCHED = "unmatched";

/**
 * The path routes are matched on: trailing slashes dropped (so /v1/files/ is /v1/files) and
 * escapes left as sent, the way the stand-in has always matched.
 */
export function routedPath(request: Request): string {
  return new URL(request.url).pathname.replace(/\/+$/, "") || "/";
}

/** "POST /v1/chat/completions" etc.: the route that will answer, by its exact method. */
function routeOf(c: Context<StandInEnv>): string {
  const method = c.req.method;
  // HEAD is not served (Hono would answer it as GET), so only the exact method counts.
  const handler = matchedRoutes(c).find((route) => route.method === method);
  return handler ? `${method} ${handler.path}` : UNMATCHED;
}

export function recordRequest(state: StandInState): MiddlewareHandler<StandInEnv> {
  return async (c, next) => {
    const startedAt = Date.now();
    const route = routeOf(c);
    const entry = state.log.arrive(
      startedAt,
      c.req.method,
      route,
      c.req.header("x-stainless-retry-count"),
    );
    c.set("startedAt", startedAt);
    c.set("route", route);
    c.set("entry", entry);
    c.set("unanswered", false);
    await next();
    if (c.get("unanswered")) return;
    entry.outcome = c.res.status;
    c.res.headers.set("x-request-id", requestId());
    c.res.headers.set("openai-version", "2020-10-01");
    c.res.headers.set("openai-processing-ms", String(Date.now() - startedAt));
    // Hono answers HEAD without a body; Node's own server announced the length it left out.
    if (c.req.method === "HEAD" && c.res.body !== null) {
      const length = (await c.res.clone().arrayBuffer()).byteLength;
      c.res.headers.set("content-length", String(length));
    }
  };
}

/** The configured delay before every answer; closing the stand-in cuts it short, unanswered. */
export function applyLatency(state: StandInState): MiddlewareHandler<StandInEnv> {
  return async (c, next) => {
    const latencyMs = state.behaviour.latencyMs;
    if (latencyMs > 0) {
      try {
        await sleep(latencyMs, undefined, { signal: state.closing.signal });
      } catch {
        c.set("unanswered", true); // closing: the socket is being destroyed anyway
        return c.body(null);
      }
    }
    await next();
  };
}

export function requireApiKey(state: StandInState): MiddlewareHandler<StandInEnv> {
  return async (c, next) => {
    const authorization = c.req.header("authorization");
    if (state.apiKey === undefined || authorization === `Bearer ${state.apiKey}`) {
      return next();
    }
    state.log.counters.unauthorized++;
    const message = authorization
      ? "Incorrect API key provided. " +
        "You can find your API key at https://platform.openai.com/account/api-keys."
      : "You didn't provide an API key. You need to provide your API key in an Authorization " +
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).";
    return c.json(errorBody(message, "invalid_request_error", null, "invalid_api_key"), 401);
  };
}

/** OpenAI's answer to a method and path it does not serve. */
export function unmatchedRoute(c: Context<StandInEnv>): Response {
  const pathname = new URL(c.req.url).pathname;
  const message = `Invalid URL (${c.req.method} ${pathname})`;
  return c.json(errorBody(message, "invalid_request_error"), 404);
}

export function answerUnmatched(): MiddlewareHandler<StandInEnv> {
  return async (c, next) => {
    if (c.get("route") === UNMATCHED) return unmatchedRoute(c);
    await next();
  };
}

/** HttpError answers as it says; anything else is OpenAI's generic 500. */
export const answerError: ErrorHandler<StandInEnv> = (error, c) =>
  error instanceof HttpError ? c.json(error.body, error.status) : c.json(serverErrorBody(), 500);
