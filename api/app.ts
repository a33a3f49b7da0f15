import type { Client } from "@temporalio/client";
import { Hono } from "hono";
import type { Config } from "../lib/config.ts";
import type { Database } from "../lib/db.ts";
import type { Logger } from "../lib/logger.ts";
import { healthReport, schedulerStatus } from "../lib/scheduler-status.ts";
import { schedulerDefinitions } from "../lib/schedulers.ts";

export interface ApiDeps {
  config: Config;
  client: Client;
  db: Database;
  log: Logger;
}

export function createApp({ config, client, db }: ApiDeps) {
  const app = new Hono();

  app.get("/livez", (c) => c.json({ status: "ok" }));

  // GET and HEAD: HEAD answers with the status code only (Hono drops the body for HEAD).
  app.get("/api/admin/schedulers/health", async (c) => {
    const statuses = await Promise.all(
      schedulerDefinitions(config).map((def) =>
        schedulerStatus(client, db, def, config.scheduler.errorThreshold),
      ),
    );
    const report = healthReport(statuses);
    c.header("cache-control", "no-store");
    return c.json(report, report.healthy ? 200 : 503);
  });

  return app;
}
