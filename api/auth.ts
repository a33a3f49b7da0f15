import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import { errorBody } from "./envelope.ts";

/** Cookie set by the dashboard's sign-in form; holds the same token as the Bearer header. */
export const SESSION_COOKIE = "livedash_admin";

/** Equal-length digests compared in constant time: neither content nor length leaks. */
export function sameToken(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

export function presentedToken(
  header: string | undefined,
  cookie: string | undefined,
): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1] ?? cookie;
}

/**
 * Admin routes need `Authorization: Bearer <ADMIN_API_TOKEN>` (or the dashboard's cookie).
 * With no token configured they are open only in the explicit insecure dev mode.
 */
export function requireAdmin(token: string | undefined): MiddlewareHandler {
  return async (c, next) => {
    if (token === undefined) return next();
    const given = presentedToken(c.req.header("authorization"), getCookie(c, SESSION_COOKIE));
    if (!given || !sameToken(given, token)) {
      c.header("www-authenticate", 'Bearer realm="livedash-admin"');
      return c.json(
        errorBody(
          "unauthorized",
          "a valid admin token is required (Authorization: Bearer <token>)",
        ),
        401,
      );
    }
    return next();
  };
}
