import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { SchedulerAdmin } from "../control-plane/admin-service.ts";
import { dataOf } from "./envelope.ts";
import { errors, OrphanSchema } from "./scheduler-schemas.ts";

/**
 * Orphaned schedules, mounted at /api/admin/orphaned-schedules: schedules that carry LiveDash's
 * memo but that no configuration owns and no worker polls.
 */

const orphansRoute = createRoute({
  method: "get",
  path: "/",
  summary:
    "Schedules with LiveDash's memo that no current configuration owns and no worker polls (workers remove unpaused ones)",
  security: [{ bearer: [] }],
  responses: {
    200: {
      description: "Orphaned schedules",
      content: { "application/json": { schema: dataOf(z.array(OrphanSchema)) } },
    },
    401: errors[401],
  },
});

export function orphanedSchedulesApp(admin: SchedulerAdmin) {
  const app = new OpenAPIHono();
  app.openapi(orphansRoute, async (c) => c.json({ data: await admin.orphans() }, 200));
  return app;
}
