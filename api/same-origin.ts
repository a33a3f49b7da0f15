import type { Context, MiddlewareHandler } from "hono";
import { csrf } from "hono/csrf";
import { HTTPException } from "hono/http-exception";

/**
 * CSRF for the dashboard's forms: Hono's csrf() decides, with the origins this API answers on.
 *
 * - An Origin header decides alone: it must be the request URL's origin or the one a
 *   TLS-terminating proxy reports (X-Forwarded-Proto + X-Forwarded-Host or Host). A cross-site
 *   form cannot set X-Forwarded-* headers, so trusting them cannot let a foreign page pass.
 * - Without an Origin, Sec-Fetch-Site must say same-origin or none (typed in the address bar).
 * - Hand-written on purpose: a request with neither header (curl, a script, an old browser)
 *   passes, as it always has; csrf() alone would refuse it.
 * - csrf() only judges the content types a cross-site form can send (form, multipart, text);
 *   a JSON POST needs a CORS preflight this API never grants, so it cannot come from a page.
 *
 * A refusal is answered by `onRefused` (the dashboard's own 403 page), not csrf()'s plain text.
 */

function firstValue(header: string | undefined): string | undefined {
  const value = header?.split(",")[0]?.trim();
  return value ? value : undefined;
}

/** The origins this request was addressed to: its own URL's, and the one a proxy reports. */
function ownOrigins(c: Context): string[] {
  const origins = [new URL(c.req.url).origin];
  const proto = firstValue(c.req.header("x-forwarded-proto"));
  const host = firstValue(c.req.header("x-forwarded-host")) ?? c.req.header("host");
  if (proto && host) origins.push(`${proto}://${host}`);
  return origins;
}

/** Whether the browser reached us over HTTPS, directly or through a proxy. */
export function isHttps(c: Context): boolean {
  return (
    new URL(c.req.url).protocol === "https:" ||
    firstValue(c.req.header("x-forwarded-proto")) === "https"
  );
}

const check = csrf({
  origin: (origin, c) => ownOrigins(c).includes(origin),
  // Only when there is no Origin: a present Origin is the stronger signal and decides alone.
  secFetchSite: (site, c) =>
    c.req.header("origin") === undefined && (site === "same-origin" || site === "none"),
});

export function sameOriginOnly(
  onRefused: (c: Context) => Response | Promise<Response>,
): MiddlewareHandler {
  return async (c, next) => {
    const unmarked =
      c.req.header("origin") === undefined && c.req.header("sec-fetch-site") === undefined;
    if (!unmarked) {
      try {
        await check(c, async () => {});
      } catch (error) {
        if (error instanceof HTTPException && error.status === 403) return onRefused(c);
        throw error;
      }
    }
    await next();
  };
}
