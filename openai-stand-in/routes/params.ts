/**
 * Reading a routed request's id and query exactly as the stand-in always has: the id is the raw
 * path segment, percent-decoded as a whole and kept as-is when that fails (Hono's c.req.param
 * decodes escape by escape instead), and the query comes from the WHATWG URL parser.
 */

import type { Context } from "hono";
import type { StandInEnv } from "../state.ts";

/** The `:id` of /v1/files/:id[...] and /v1/batches/:id[...]: always the fourth path segment. */
export function idParam(c: Context<StandInEnv>): string {
  const segment = c.req.path.split("/")[3] ?? "";
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment; // a malformed escape simply names no stored object
  }
}

export function searchParams(c: Context<StandInEnv>): URLSearchParams {
  return new URL(c.req.url).searchParams;
}
