import type { Context } from "hono";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { every } from "hono/combine";
import { deleteCookie, setCookie } from "hono/cookie";
import { html } from "hono/html";
import { NONCE, secureHeaders } from "hono/secure-headers";
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
import { adminAuth, isAdminToken, SESSION_COOKIE } from "./admin-auth.ts";
import { companyHealthData } from "./dashboard-companies-data.ts";
import { pipelineCounts } from "./dashboard-data.ts";
import { type FailureReason, flashFrom, flashLocation, isAction } from "./dashboard-flash.ts";
import { LoginPage, MessagePage } from "./dashboard-layout.tsx";
import { DashboardPage } from "./dashboard-view.tsx";
import { isHttps, sameOriginOnly } from "./same-origin.ts";

/**
 * The operator dashboard at /admin: server-rendered HTML with plain forms. Its actions go
 * through the same service as the admin API (`admin.act`, actor "dashboard").
 *
 * Auth: with ADMIN_API_TOKEN set, /admin shows a sign-in form until the browser holds the
 * session cookie (the token, HttpOnly, SameSite=Strict; the admin API accepts it too). Every
 * POST is refused with a 403 page when it came from another origin (same-origin.ts: Hono's
 * csrf()). Without a token (ADMIN_API_INSECURE=true) everything is open, as for the admin API.
 *
 * Every page and redirect: Hono's secureHeaders() with a strict CSP (nothing loaded from
 * anywhere, the inline style sheet by its per-response nonce, no framing), and no caching.
 */

export interface DashboardDeps {
  admin: SchedulerAdmin;
  config: Config;
  db: Database;
  log?: Logger;
}

const ACTOR = "dashboard";
const MAX_NOTE = 500;
const MAX_FORM_BYTES = 16 * 1024;
const SESSION_MAX_AGE_S = 12 * 60 * 60;

const pageHeaders = every(
  secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'none'"],
      styleSrc: [NONCE],
      imgSrc: ["'self'", "data:"],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
      baseUri: ["'none'"],
    },
    xFrameOptions: "DENY",
    xContentTypeOptions: true,
    referrerPolicy: "same-origin",
    // Only the headers above, as the dashboard has always sent; the API's JSON routes get none.
    crossOriginResourcePolicy: false,
    crossOriginOpenerPolicy: false,
    originAgentCluster: false,
    strictTransportSecurity: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false,
  }),
  async (c, next) => {
    c.header("cache-control", "no-store");
    await next();
  },
);

function render(
  c: Context,
  status: ContentfulStatusCode,
  page: (nonce: string) => ReturnType<typeof LoginPage>,
) {
  return c.html(html`<!doctype html>${page(c.get("secureHeadersNonce") ?? "")}`, status);
}

const seeOther = (c: Context, location: string) => c.redirect(location, 303);

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const line = message.split("\n")[0] ?? "";
  return line.length > 300 ? `${line.slice(0, 299)}…` : line;
}

/** Mount at "/": its paths are /admin (and /admin/, a redirect) and the forms under it. */
export function dashboardApp({ admin, config, db, log }: DashboardDeps) {
  const token = config.admin.token;
  const { isAdmin } = adminAuth(token);
  const app = new Hono();

  const sameOrigin = sameOriginOnly((c) =>
    render(c, 403, (nonce) => (
      <MessagePage
        nonce={nonce}
        title="Request refused"
        message="This form was sent from another site. Use the dashboard itself."
      />
    )),
  );
  const formLimit = bodyLimit({
    maxSize: MAX_FORM_BYTES,
    onError: (c) =>
      render(c, 413, (nonce) => (
        <MessagePage nonce={nonce} title="Too large" message="The form was too large." />
      )),
  });
  const form = every(pageHeaders, formLimit, sameOrigin);

  app.get("/admin/", pageHeaders, (c) => seeOther(c, "/admin"));

  app.get("/admin", pageHeaders, async (c) => {
    if (!(await isAdmin(c))) return render(c, 200, (nonce) => <LoginPage nonce={nonce} />);
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

  app.post("/admin/login", form, async (c) => {
    if (token === undefined) return seeOther(c, "/admin");
    const body = await c.req.parseBody();
    const given = typeof body.token === "string" ? body.token : "";
    if (!(await isAdminToken(given, token))) {
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

  app.post("/admin/logout", form, async (c) => {
    deleteCookie(c, SESSION_COOKIE, {
      path: "/",
      httpOnly: true,
      sameSite: "Strict",
      secure: isHttps(c),
    });
    return seeOther(c, "/admin");
  });

  app.post("/admin/actions", form, async (c) => {
    if (!(await isAdmin(c))) {
      return render(c, 401, (nonce) => (
        <LoginPage nonce={nonce} error="Sign in to act on schedulers." />
      ));
    }
    const body = await c.req.parseBody();
    const action = body.action;
    const schedulerId = typeof body.schedulerId === "string" ? body.schedulerId : "";
    const note = typeof body.note === "string" ? body.note.trim() : "";
    const validId = isSchedulerId(schedulerId);
    const fail = (reason: FailureReason) =>
      seeOther(
        c,
        flashLocation(validId ? schedulerId : undefined, {
          failed: isAction(action) ? action : "pause",
          reason,
        }),
      );
    if (!isAction(action)) {
      return render(c, 400, (nonce) => (
        <MessagePage nonce={nonce} title="Invalid request" message="Unknown action." />
      ));
    }
    if (!validId || note.length > MAX_NOTE) return fail("invalid");
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

  return app;
}
