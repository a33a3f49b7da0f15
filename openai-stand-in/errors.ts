/**
 * OpenAI's error answers as the SDK reads them into APIError.status/code/param/type: the body
 * shape, the common 400/404/413/500 errors, and HttpError, which route handlers throw and the
 * app's onError turns into the response (so handlers can validate top-down and bail out early).
 */

import type { ErrorBody } from "./types.ts";

export type ErrorStatus = 400 | 401 | 404 | 413 | 429 | 500;

/** Thrown by handlers to answer with an OpenAI error body. */
export class HttpError extends Error {
  constructor(
    readonly status: ErrorStatus,
    readonly body: ErrorBody,
  ) {
    super(`HTTP ${status}`);
  }
}

export function errorBody(
  message: string,
  type: string,
  param: string | null = null,
  code: string | null = null,
): ErrorBody {
  return { error: { message, type, param, code } };
}

export function badRequest(
  message: string,
  param: string | null = null,
  code: string | null = null,
): HttpError {
  return new HttpError(400, errorBody(message, "invalid_request_error", param, code));
}

export function notFound(message: string, param: string | null = "id"): HttpError {
  return new HttpError(404, errorBody(message, "invalid_request_error", param));
}

export function bodyTooLarge(): HttpError {
  return new HttpError(413, errorBody("The request body is too large.", "invalid_request_error"));
}

export function serverErrorBody(): ErrorBody {
  return errorBody(
    "The server had an error while processing your request. Sorry about that!",
    "server_error",
  );
}
