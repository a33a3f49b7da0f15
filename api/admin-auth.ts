import type { Context, MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { getCookie } from "hono/cookie";
import { HTTPException } from "hono/http-exception";
import { timingSafeEqual } from "hono/utils/buffer";
import { errorBody } from "./envelope.ts";

/**
 * Who may use the admin API and the dashboard: whoever presents ADMIN_API_TOKEN, as
 * `Authorization: Bearer <token>` (Hono's bearerAuth, constant-time compare) or as the
 * dashboard's session cookie. bearerAuth reads only a header, so the cookie is checked here
 * first, with the same constant-time compare bearerAuth uses. Every refusal is the 401 the API
 * has always answered: the common error envelope and a `Bearer realm` challenge (bearerAuth
 * would answer a malformed header with a plain-text 400; its options restore the 401).
 *
 * bearerAuth only accepts tokens of RFC 6750's token68 alphabet, so `assertBearerToken` refuses
 * any other ADMIN_API_TOKEN at startup instead of answering 401 to every request.
 */

/** Cookie set by the dashboard's sign-in form; holds the same token as the Bearer header. */
export const SESSION_COOKIE = "livedash_admin";

const CHALLENGE = 'Bearer realm="livedash-admin"';
/** What bearerAuth accepts after "Bearer " (RFC 6750 token68). */
const TOKEN68 = /^[A-Za-z0-9._~+/-]+=*$/;

export function isBearerToken(token: string): boolean {
  return TOKEN68.test(token);
}

const refusal = () =>
  new Response(
    JSON.stringify(
      errorBody("unauthorized", "a valid admin token is required (Authorization: Bearer <token>)"),
    ),
    { status: 401, headers: { "content-type": "application/json", "www-authenticate": CHALLENGE } },
  );

export interface AdminAuth {
  /** Lets a request through with the token; answers 401 otherwise. */
  middleware: MiddlewareHandler;
  /** The same decision as a boolean, for pages that show a sign-in form instead of a 401. */
  isAdmin: (c: Context) => Promise<boolean>;
}

/** With no token configured (only in the explicit insecure dev mode) everyone is admin. */
export function adminAuth(token: string | undefined): AdminAuth {
  if (token === undefined) {
    return { middleware: async (_c, next) => next(), isAdmin: async () => true };
  }
  const bearer = bearerAuth({
    token,
    realm: "livedash-admin",
    noAuthenticationHeader: { message: refusal, wwwAuthenticateHeader: CHALLENGE },
    invalidAuthenticationHeader: { message: refusal, wwwAuthenticateHeader: CHALLENGE },
    invalidToken: { message: refusal, wwwAuthenticateHeader: CHALLENGE },
  });
  const sessionCookie = async (c: Context): Promise<boolean> => {
    const cookie = getCookie(c, SESSION_COOKIE);
    return cookie !== undefined && cookie !== "" && (await timingSafeEqual(cookie, token));
  };
  const middleware: MiddlewareHandler = async (c, next) => {
    if (await sessionCookie(c)) return next();
    return bearer(c, next);
  };
  const isAdmin = async (c: Context): Promise<boolean> => {
    if (await sessionCookie(c)) return true;
    try {
      await bearer(c, async () => {});
      return true;
    } catch (error) {
      if (error instanceof HTTPException && error.status === 401) return false;
      throw error;
    }
  };
  return { middleware, isAdmin };
}

/** The sign-in form's token, compared like the header and the cookie. */
export async function isAdminToken(given: string, token: string): Promise<boolean> {
  return given !== "" && (await timingSafeEqual(given, token));
}
