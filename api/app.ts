import { OpenAPIHono } from "@hono/zod-openapi";
import type { Client } from "@temporalio/client";
import { bodyLimit } from "hono/body-limit";
import { except } from "hono/combine";
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
import type { SchedulerDefinition } from "../control-plane/scheduler-registry.ts";
import { schedulerStatus, statusOptionsFor } from "../control-plane/scheduler-status.ts";
import { adminAuth, isBearerToken } from "./admin-auth.ts";
import { companiesApp } from "./companies.ts";
import { dashboardApp } from "./dashboard.tsx";
import { docsApp } from "./docs.ts";
import { errorBody } from "./envelope.ts";
import { notFound, onError, validationFailed } from "./errors.ts";
import { metricsRoute } from "./metrics.ts";
import { orphanedSchedulesApp } from "./orphaned-schedules.ts";
import { probesApp, type ReadinessCheck, SCHEDULER_HEALTH_PATH } from "./probes.ts";
import { requestLog } from "./request-log.ts";
import { runsApp } from "./runs.ts";
import { schedulersApp } from "./schedulers.ts";

/**
 * The HTTP API, composed the way Hono's guide for larger apps does it: one sub-app per resource
 * (probes, metrics, schedulers, runs, orphaned schedules, companies, dashboard, docs), each in
 * its own module, mounted here with app.route(). This file holds what spans them all: the
 * request id and log, the body limit, the admin token on /api/admin, and the error answers.
 */

export type { ReadinessCheck } from "./probes.ts";

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

  // Every OpenAPI sub-app answers validation failures with this app's hook.
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationFailed });

  app.use("*", requestId());
  app.use("*", requestLog(log));
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
  // Everything under /api/admin needs the admin token, unknown paths included (401 before 404);
  // only the scheduler health stays open, like the other probes.
  app.use("/api/admin/*", except(SCHEDULER_HEALTH_PATH, adminAuth(config.admin.token).middleware));
  app.onError(onError(log));
  app.notFound(notFound);

  // Open: probes first, so /api/admin/schedulers/health is not taken for a scheduler id.
  // Prometheus scrapes stay open like the probes: serve the API port on an internal network.
  app.route("/", probesApp({ client, db, admin, statusOf, readiness: deps.readiness }));
  app.route("/", metricsRoute(metrics));
  // Admin (token).
  app.route("/api/admin/schedulers", schedulersApp(admin));
  app.route("/api/admin/schedulers", runsApp(admin));
  app.route("/api/admin/orphaned-schedules", orphanedSchedulesApp(admin));
  app.route("/api/admin/companies", companiesApp(db));
  // The operator dashboard (its own sign-in form and session cookie).
  app.route("/", dashboardApp({ admin, config, db, log }));
  // Last: the OpenAPI document covers every app mounted above.
  app.route("/", docsApp(app));

  return app;
}

/** Admin routes without a token only in the explicit insecure dev mode. */
export function assertAdminAuthConfigured(config: Config): void {
  if (config.admin.token === undefined && !config.admin.insecure) {
    throw new ConfigError([
      "ADMIN_API_TOKEN: required for the admin API (16+ characters); ADMIN_API_INSECURE=true runs it without authentication, for development only",
    ]);
  }
  if (config.admin.token !== undefined && !isBearerToken(config.admin.token)) {
    throw new ConfigError([
      "ADMIN_API_TOKEN: use only letters, digits and - . _ ~ + / (then = padding): clients send it as an HTTP Bearer token",
    ]);
  }
}
