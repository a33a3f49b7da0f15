import { randomBytes } from "node:crypto";
import type { Context, Env, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { html } from "hono/html";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Config } from "../adapters/config.ts";
import type { Database } from "../adapters/db/client.ts";
import type { Logger } from "../adapters/logger.ts";
import {
  ActionConflictError,
  type SchedulerAdmin,
  UnknownSchedulerError,
} from "../control-plane/admin-service.ts";
import { isSchedulerId } from "../domain/scheduler-id.ts";
import { presentedToken, SESSION_COOKIE, sameToken } from "./auth.ts";
import { companyHealthData } from "./dashboard-companies-data.ts";
import { pipelineCounts } from "./dashboard-data.ts";
import { DashboardPage, type Flash, LoginPage, MessagePage } from "./dashboard-view.tsx";

/**
 * The operator dashboard at /admin: server-rendered HTML with plain forms. Its actions go
 * through the same service as the admin API (`admin.act`, actor "dashboard").
 *
 * Auth: with ADMIN_API_TOKEN set, /admin shows a sign-in form until the browser holds the
 * session cookie (the token, HttpOnly, SameSite=Strict; the admin API accepts it too). Every
 * POST under /admin is refused when its Origin (or, without one, Sec-Fetch-Site) says it came
 * from another origin, so another site cannot submit the forms (CSRF). Without a token
 * (ADMIN_API_INSECURE=true) everything is open, as for the admin API.
 */

export interface DashboardDeps {
  admin: SchedulerAdmin;
  config: Config;
  db: Database;
  log?: Logger;
}

const ACTOR = "dashboard";
const ACTIONS = ["pause", "resume", "trigger"] as const;
type DashboardAction = (typeof ACTIONS)[number];
const MAX_NOTE = 500;
const MAX_FORM_BYTES = 16 * 1024;
const SESSION_MAX_AGE_S = 12 * 60 * 60;

const DONE: Record<DashboardAction, string> = {
  pause: "Paused",
  resume: "Resumed",
  trigger: "Triggered",
};
const FAILURES = {
  invalid: "the form was incomplete or invalid",
  unknown: "there is no such scheduler",
  conflict: "the action cannot be taken now",
  error: "Temporal or the database did not answer as expected; see the server log",
} as const;
type FailureReason = keyof typeof FAILURES;

function isAction(value: unknown): value is DashboardAction {
  return typeof value === "string" && (ACTIONS as readonly string[]).includes(value);
}

function firstValue(header: string | undefined): string | undefined {
  const value = header?.split(",")[0]?.trim();
  return value ? value : undefined;
}

function isHttps(c: Context): boolean {
  return (
    new URL(c.req.url).protocol === "https:" ||
    firstValue(c.req.header("x-forwarded-proto")) === "https"
  );
}

/**
 * The origins this request was addressed to: its own URL's, and the one a TLS-terminating
 * proxy reports. A cross-site form cannot set X-Forwarded-* headers, so trusting them here
 * cannot let a foreign page pass.
 */
function ownOrigins(c: Context): string[] {
  const origins = [new URL(c.req.url).origin];
  const proto = firstValue(c.req.header("x-forwarded-proto"));
  const host = firstValue(c.req.header("x-forwarded-host")) ?? c.req.header("host");
  if (proto && host) origins.push(`${proto}://${host}`);
  return origins;
}

/** CSRF: a POST whose Origin is present and not ours is refused (Sec-Fetch-Site without one). */
export function sameOriginRequest(c: Context): boolean {
  const origin = c.req.header("origin");
  if (origin !== undefined) return ownOrigins(c).includes(origin);
  const site = c.req.header("sec-fetch-site");
  return site === undefined || site === "same-origin" || site === "none";
}

function newNonce(): string {
  return randomBytes(16).toString("base64");
}

/** Every dashboard response: no caching, no framing, nothing loaded from anywhere else. */
function securityHeaders(c: Context, nonce?: string) {
  c.header(
    "content-security-policy",
    [
      "default-src 'none'",
      nonce ? `style-src 'nonce-${nonce}'` : undefined,
      "img-src 'self' data:",
      "form-action 'self'",
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ]
      .filter(Boolean)
      .join("; "),
  );
  c.header("x-frame-options", "DENY");
  c.header("x-content-type-options", "nosniff");
  c.header("referrer-policy", "same-origin");
  c.header("cache-control", "no-store");
}

function render(
  c: Context,
  status: ContentfulStatusCode,
  page: (nonce: string) => ReturnType<typeof LoginPage>,
) {
  const nonce = newNonce();
  securityHeaders(c, nonce);
  return c.html(html`<!doctype html>${page(nonce)}`, status);
}

function seeOther(c: Context, location: string) {
  securityHeaders(c);
  return c.redirect(location, 303);
}

function flashLocation(schedulerId: string | undefined, params: Record<string, string>): string {
  const query = new URLSearchParams(params);
  if (schedulerId) query.set("scheduler", schedulerId);
  return `/admin?${query.toString()}${schedulerId ? `#scheduler-${schedulerId}` : ""}`;
}

/**
 * The flash message after an action, from the query string. Only known codes and a valid
 * scheduler id are shown, so a crafted link cannot put text of its own on the page.
 */
function flashFrom(c: Context): Flash | undefined {
  const scheduler = c.req.query("scheduler");
  const id = scheduler && isSchedulerId(scheduler) ? scheduler : undefined;
  const done = c.req.query("done");
  if (isAction(done) && id) {
    return {
      kind: "ok",
      message: done === "trigger" ? `Triggered ${id}: a run starts now.` : `${DONE[done]} ${id}.`,
    };
  }
  const failed = c.req.query("failed");
  const reason = c.req.query("reason");
  if (isAction(failed) && reason && reason in FAILURES) {
    return {
      kind: "error",
      message: `Could not ${failed} ${id ?? "the scheduler"}: ${FAILURES[reason as FailureReason]}.`,
    };
  }
  return undefined;
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const line = message.split("\n")[0] ?? "";
  return line.length > 300 ? `${line.slice(0, 299)}…` : line;
}

export function registerDashboard<E extends Env>(app: Hono<E>, deps: DashboardDeps) {
  const { admin, config, db, log } = deps;
  const token = config.admin.token;

  const signedIn = (c: Context): boolean => {
    if (token === undefined) return true;
    const given = presentedToken(c.req.header("authorization"), getCookie(c, SESSION_COOKIE));
    return given !== undefined && given !== "" && sameToken(given, token);
  };

  const forbidden = (c: Context) =>
    render(c, 403, (nonce) => (
      <MessagePage
        nonce={nonce}
        title="Request refused"
        message="This form was sent from another site. Use the dashboard itself."
      />
    ));

  const limit = bodyLimit({
    maxSize: MAX_FORM_BYTES,
    onError: (c) =>
      render(c, 413, (nonce) => (
        <MessagePage nonce={nonce} title="Too large" message="The form was too large." />
      )),
  });

  app.get("/admin/", (c) => seeOther(c, "/admin"));

  app.get("/admin", async (c) => {
    if (!signedIn(c)) return render(c, 200, (nonce) => <LoginPage nonce={nonce} />);
    const now = new Date();
    const [schedulers, counts, companies] = await Promise.all([
      admin.list().catch((error: unknown) => {
        log?.error({ err: error }, "dashboard: listing schedulers failed");
        return { error: firstLine(error) };
      }),
      pipelineCounts(db).catch((error: unknown) => {
        log?.error({ err: error }, "dashboard: pipeline counts failed");
        return { error: firstLine(error) };
      }),
      companyHealthData(db).catch((error: unknown) => {
        log?.error({ err: error }, "dashboard: company import health failed");
        return { error: firstLine(error) };
      }),
    ]);
    return render(c, 200, (nonce) => (
      <DashboardPage
        nonce={nonce}
        now={now}
        schedulers={schedulers}
        counts={counts}
        companies={companies}
        flash={flashFrom(c)}
        authenticated={token !== undefined}
        insecure={token === undefined}
      />
    ));
  });

  app.post("/admin/login", limit, async (c) => {
    if (!sameOriginRequest(c)) return forbidden(c);
    if (token === undefined) return seeOther(c, "/admin");
    const form = await c.req.parseBody();
    const given = typeof form.token === "string" ? form.token : "";
    if (given === "" || !sameToken(given, token)) {
      log?.warn("dashboard: sign-in with a wrong token");
      return render(c, 401, (nonce) => (
        <LoginPage nonce={nonce} error="That is not the admin token." />
      ));
    }
    setCookie(c, SESSION_COOKIE, token, {
      httpOnly: true,
      sameSite: "Strict",
      path: "/",
      secure: isHttps(c),
      maxAge: SESSION_MAX_AGE_S,
    });
    return seeOther(c, "/admin");
  });

  app.post("/admin/logout", limit, async (c) => {
    if (!sameOriginRequest(c)) return forbidden(c);
    deleteCookie(c, SESSION_COOKIE, {
      path: "/",
      httpOnly: true,
      sameSite: "Strict",
      secure: isHttps(c),
    });
    return seeOther(c, "/admin");
  });

  app.post("/admin/actions", limit, async (c) => {
    if (!sameOriginRequest(c)) return forbidden(c);
    if (!signedIn(c)) {
      return render(c, 401, (nonce) => (
        <LoginPage nonce={nonce} error="Sign in to act on schedulers." />
      ));
    }
    const form = await c.req.parseBody();
    const action = form.action;
    const schedulerId = typeof form.schedulerId === "string" ? form.schedulerId : "";
    const note = typeof form.note === "string" ? form.note.trim() : "";
    const validId = isSchedulerId(schedulerId);
    const fail = (reason: FailureReason) =>
      seeOther(
        c,
        flashLocation(validId ? schedulerId : undefined, {
          failed: isAction(action) ? action : "pause",
          reason,
        }),
      );
    if (!isAction(action) || !validId || note.length > MAX_NOTE) {
      if (!isAction(action)) {
        return render(c, 400, (nonce) => (
          <MessagePage nonce={nonce} title="Invalid request" message="Unknown action." />
        ));
      }
      return fail("invalid");
    }
    try {
      await admin.act(
        { action, schedulerId, note: action === "trigger" || note === "" ? undefined : note },
        ACTOR,
      );
    } catch (error) {
      if (error instanceof UnknownSchedulerError) return fail("unknown");
      if (error instanceof ActionConflictError) return fail("conflict");
      log?.error({ err: error, action, schedulerId }, "dashboard action failed");
      return fail("error");
    }
    return seeOther(c, flashLocation(schedulerId, { done: action }));
  });
}
