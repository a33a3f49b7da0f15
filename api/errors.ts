import type { Hook } from "@hono/zod-openapi";
import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Logger } from "../adapters/logger.ts";
import { errorBody } from "./envelope.ts";

/**
 * How the API answers what no route answered itself, always in the common error envelope:
 * request validation (400 naming each field), unknown routes (404), Hono's own client errors
 * (malformed JSON, ...: their status) and anything thrown (500, logged with the request id).
 */

/** The OpenAPI apps' defaultHook: validation failures answer 400 naming each field. */
// biome-ignore lint/suspicious/noExplicitAny: the hook serves every route's schema
export const validationFailed: Hook<any, any, any, any> = (result, c) => {
  if (result.success) return;
  const issues = result.error.issues.map((issue) => ({
    path: issue.path.join(".") || "(body)",
    message: issue.message,
  }));
  return c.json(
    errorBody(
      "validation_failed",
      `invalid request: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
      issues,
    ),
    400,
  );
};

export const notFound: NotFoundHandler = (c) =>
  c.json(errorBody("not_found", `no route for ${c.req.method} ${c.req.path}`), 404);

export function onError(log: Logger): ErrorHandler<{ Variables: { requestId: string } }> {
  return (error, c) => {
    if (error instanceof HTTPException && error.status < 500) {
      // Middleware that built its own answer (bearerAuth's 401): that answer, with the headers
      // already set on this request (its request id).
      if (error.res) return withContextHeaders(c, error.getResponse());
      // Hono's own client errors (a body that is not JSON, ...) keep their status.
      return c.json(errorBody("bad_request", error.message || "bad request"), error.status);
    }
    log.error({ err: error, requestId: c.get("requestId"), path: c.req.path }, "request failed");
    return c.json(
      errorBody("internal_error", "the request failed; see the server log", undefined),
      500,
    );
  };
}

function withContextHeaders(c: Context, response: Response): Response {
  return c.newResponse(response.body, response);
}
