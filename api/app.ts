import { OpenAPIHono } from "@hono/zod-openapi";
import type { Client } from "@temporalio/client";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { requestId } from "hono/request-id";
import { type Config, ConfigError } from "../adapters/config.ts";
import type { Database } from "../adapters/db/client.ts";
import type { Logger } from "../adapters/logger.ts";
import { createSchedulerAdmin } from "../control-plane/admin-service.ts";
import {
  createBacklogReader,
  registerBacklogMetrics,
  withBacklog,
} from "../control-plane/backlog.ts";
import { createPlatformMetrics, type PlatformMetrics } from "../control-plane/metrics.ts";
import { within } from "../control-plane/schedule-facts.ts";
import type { SchedulerDefinition } from "../control-plane/scheduler-registry.ts";
import {
  healthReport,
  schedulerStatus,
  statusOptionsFor,
  TEMPORAL_STATUS_TIMEOUT_MS,
} from "../control-plane/scheduler-status.ts";
import { registerAdminRoutes } from "./admin-routes.ts";
import { requireAdmin } from "./auth.ts";
import { registerCompanyHealthRoutes } from "./company-health-routes.ts";
import { registerDashboard } from "./dashboard.tsx";
import { errorBody } from "./envelope.ts";
import { metricsRoute } from "./metrics.ts";
import { registerApiDocsPage, registerProbeDocs } from "./probe-docs.ts";

export interface ReadinessCheck {
  name: string;
  ok: boolean;
  detail?: string;
}

export interface ApiDeps {
  config: Config;
  client: Client;
  db: Database;
  log: Logger;
  /** Extra readiness checks of this process (its workers, its shutdown state). */
  readiness?: () => ReadinessCheck[];
  /** Prometheus metrics; created here when not given. */
  metrics?: PlatformMetrics;
}

const HEALTH_PATH = "/api/admin/schedulers/health";
const MAX_BODY_BYTES = 16 * 1024;

type AppEnv = { Variables: { requestId: string } };

export function createApp(deps: ApiDeps) {
  const { config, client, db, log } = deps;
  const admin = createSchedulerAdmin({ config, client, db });
  const statusOptions = statusOptionsFor(config, client, db);
  const backlog = createBacklogReader(db);
  const objectiveMs = config.scheduler.backlogLagObjectiveMs;
  // Health and metrics agree: both see the lag objective turn a stage ERROR.
  const statusOf = async (def: SchedulerDefinition) =>
    withBacklog(await schedulerStatus(statusOptions, def), def, backlog, objectiveMs);
  const metrics =
    deps.metrics ??
    createPlatformMetrics({
      db,
      client,
      log,
      definitions: admin.definitions,
      schedulerStatus: statusOf,
      cacheMs: config.metrics.cacheMs,
      region: config.region,
    });
  registerBacklogMetrics(metrics.registry, {
    read: backlog,
    regions: [...new Set(admin.definitions().map((d) => d.companiesRegion))],
    objectiveMs,
  });

  const app = new OpenAPIHono<AppEnv>({
    // Validation failures answer 400 naming each field, in the common envelope.
    defaultHook: (result, c) => {
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
    },
  });

  app.use("*", requestId());
  app.use("*", async (c, next) => {
    const started = performance.now();
    await next();
    log.info(
      {
        requestId: c.get("requestId"),
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        ms: Math.round(performance.now() - started),
      },
      "request",
    );
  });
  app.use(
    "/api/*",
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) =>
        c.json(
          errorBody("payload_too_large", `request bodies are limited to ${MAX_BODY_BYTES} bytes`),
          413,
        ),
    }),
  );

  app.onError((error, c) => {
    // Hono's own client errors (a body that is not JSON, ...) keep their status.
    if (error instanceof HTTPException && error.status < 500) {
      return c.json(errorBody("bad_request", error.message || "bad request"), error.status);
    }
    log.error({ err: error, requestId: c.get("requestId"), path: c.req.path }, "request failed");
    return c.json(
      errorBody("internal_error", "the request failed; see the server log", undefined),
      500,
    );
  });
  app.notFound((c) =>
    c.json(errorBody("not_found", `no route for ${c.req.method} ${c.req.path}`), 404),
  );

  // --- Open probes -------------------------------------------------------------------------

  app.get("/livez", (c) => c.json({ status: "ok" }));
  // Prometheus scrapes stay open like the probes: serve the API port on an internal network.
  app.route("/", metricsRoute(metrics));

  app.get("/readyz", async (c) => {
    const checks: ReadinessCheck[] = await Promise.all([
      within(client.workflowService.getSystemInfo({}), TEMPORAL_STATUS_TIMEOUT_MS, "Temporal")
        .then(() => ({ name: "temporal", ok: true }))
        .catch((error: Error) => ({ name: "temporal", ok: false, detail: error.message })),
      db.$queryRaw`SELECT 1`
        .then(() => ({ name: "postgres", ok: true }))
        .catch((error: Error) => ({
          name: "postgres",
          ok: false,
          detail: error.message.split("\n")[0],
        })),
    ]);
    checks.push(...(deps.readiness?.() ?? []));
    const ready = checks.every((check) => check.ok);
    return c.json({ status: ready ? "ready" : "not ready", checks }, ready ? 200 : 503);
  });

  // GET and HEAD: HEAD answers with the status code only (Hono drops the body for HEAD).
  app.get(HEALTH_PATH, async (c) => {
    const [statuses, orphans] = await Promise.all([
      Promise.all(admin.definitions().map(statusOf)),
      // Reported when Temporal answers in time; an outage already shows in the statuses.
      within(admin.orphans(), TEMPORAL_STATUS_TIMEOUT_MS, "Temporal").catch(() => []),
    ]);
    const report = healthReport(statuses, new Date(), orphans);
    c.header("cache-control", "no-store");
    return c.json(report, report.healthy ? 200 : 503);
  });

  // --- Admin (token) -----------------------------------------------------------------------

  const guard = requireAdmin(config.admin.token);
  app.use("/api/admin/*", async (c, next) =>
    c.req.path === HEALTH_PATH ? next() : guard(c, next),
  );
  registerAdminRoutes(app, admin);
  registerCompanyHealthRoutes(app, db);

  registerDashboard(app, { admin, config, db, log });

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
  });
  registerProbeDocs(app, HEALTH_PATH);
  app.doc31("/api/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "LiveDash scheduler admin API",
      version: "1.0.0",
      description: "Schedulers on Temporal: state, runs and operator actions.",
    },
  });
  // The API reference page (Swagger UI) on the document above; open, like the document.
  registerApiDocsPage(app, "/api/openapi.json");

  return app;
}

/** Admin routes without a token only in the explicit insecure dev mode. */
export function assertAdminAuthConfigured(config: Config): void {
  if (config.admin.token === undefined && !config.admin.insecure) {
    throw new ConfigError([
      "ADMIN_API_TOKEN: required for the admin API (16+ characters); ADMIN_API_INSECURE=true runs it without authentication, for development only",
    ]);
  }
}
