import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { SchedulerAdmin } from "../control-plane/admin-service.ts";
import { dataOf, ErrorSchema } from "./envelope.ts";
import {
  ActionBodySchema,
  ActionResultSchema,
  errors,
  IdParams,
  SchedulerSchema,
} from "./scheduler-schemas.ts";
import { answer } from "./service-errors.ts";

/**
 * The schedulers resource, mounted at /api/admin/schedulers: the list, one scheduler, and the
 * operator actions (pause, resume, trigger, backfill, start, stop, startAll, stopAll). The admin
 * token is checked before this app (in app.ts), for every /api/admin path but the health probe.
 */

const listRoute = createRoute({
  method: "get",
  path: "/",
  summary: "Every scheduler with its schedule, state, recent runs, metrics and workers",
  security: [{ bearer: [] }],
  responses: {
    200: {
      description: "Schedulers",
      content: { "application/json": { schema: dataOf(z.array(SchedulerSchema)) } },
    },
    401: errors[401],
  },
});

const getRoute = createRoute({
  method: "get",
  path: "/{id}",
  summary: "One scheduler",
  security: [{ bearer: [] }],
  request: { params: IdParams },
  responses: {
    200: {
      description: "Scheduler",
      content: { "application/json": { schema: dataOf(SchedulerSchema) } },
    },
    ...errors,
  },
});

const actionRoute = createRoute({
  method: "post",
  path: "/",
  summary: "pause, resume, trigger, backfill, start or stop one scheduler; startAll, stopAll",
  security: [{ bearer: [] }],
  request: {
    body: { required: true, content: { "application/json": { schema: ActionBodySchema } } },
    headers: z.object({
      "x-livedash-actor": z.string().trim().min(1).max(64).optional().openapi({
        description: "Who is acting, for the audit trail (default admin-api)",
      }),
    }),
  },
  responses: {
    200: {
      description: "Done",
      content: { "application/json": { schema: dataOf(z.array(ActionResultSchema)) } },
    },
    ...errors,
    409: {
      description: "The action cannot be taken now",
      content: { "application/json": { schema: ErrorSchema } },
    },
  },
});

export function schedulersApp(admin: SchedulerAdmin) {
  const app = new OpenAPIHono();

  app.openapi(listRoute, async (c) => c.json({ data: await admin.list() }, 200));

  app.openapi(getRoute, async (c) => {
    const result = await answer(() => admin.get(c.req.valid("param").id));
    return result.ok ? c.json({ data: result.value }, 200) : c.json(result.body, 404);
  });

  app.openapi(actionRoute, async (c) => {
    const body = c.req.valid("json");
    const actor = c.req.valid("header")["x-livedash-actor"] ?? "admin-api";
    const result = await answer(() =>
      admin.act(
        {
          ...body,
          start: body.start ? new Date(body.start) : undefined,
          end: body.end ? new Date(body.end) : undefined,
        },
        actor,
      ),
    );
    if (result.ok) return c.json({ data: result.value }, 200);
    return result.status === 404 ? c.json(result.body, 404) : c.json(result.body, 409);
  });

  return app;
}
