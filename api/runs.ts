import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { SchedulerAdmin } from "../control-plane/admin-service.ts";
import { dataOf, ErrorSchema, errorBody } from "./envelope.ts";
import { errors, IdParams, RunSchema } from "./scheduler-schemas.ts";
import { answer } from "./service-errors.ts";

/**
 * A scheduler's runs, mounted at /api/admin/schedulers beside the schedulers app: the run
 * history (newest first, cursor-paged) and one run with its live progress while it runs.
 */

const runsRoute = createRoute({
  method: "get",
  path: "/{id}/runs",
  summary: "Run history, newest first, with outcome, duration and counts",
  security: [{ bearer: [] }],
  request: {
    params: IdParams,
    query: z.object({
      limit: z.coerce.number().int().min(1).max(200).default(20),
      before: z
        .string()
        .max(200)
        .optional()
        .openapi({ description: "nextCursor of the previous page" }),
    }),
  },
  responses: {
    200: {
      description: "A page of runs",
      content: {
        "application/json": {
          schema: dataOf(z.object({ runs: z.array(RunSchema), nextCursor: z.string().nullable() })),
        },
      },
    },
    ...errors,
  },
});

const runRoute = createRoute({
  method: "get",
  path: "/{id}/runs/{workflowId}",
  summary: "One run: outcome, counts, and while it runs its live progress",
  security: [{ bearer: [] }],
  request: {
    params: IdParams.extend({
      workflowId: z
        .string()
        .min(1)
        .max(400)
        .openapi({ param: { name: "workflowId", in: "path" } }),
    }),
  },
  responses: {
    200: { description: "The run", content: { "application/json": { schema: dataOf(RunSchema) } } },
    ...errors,
    404: {
      description: "Unknown scheduler or run",
      content: { "application/json": { schema: ErrorSchema } },
    },
  },
});

export function runsApp(admin: SchedulerAdmin) {
  const app = new OpenAPIHono();

  app.openapi(runsRoute, async (c) => {
    const { limit, before } = c.req.valid("query");
    const result = await answer(() => admin.runs(c.req.valid("param").id, { limit, before }));
    if (result.ok) return c.json({ data: result.value }, 200);
    // A cursor that does not decode is the client's mistake.
    return result.status === 404
      ? c.json(result.body, 404)
      : c.json(errorBody("validation_failed", result.body.error.message), 400);
  });

  app.openapi(runRoute, async (c) => {
    const { id, workflowId } = c.req.valid("param");
    const result = await answer(() => admin.run(id, workflowId));
    if (!result.ok) return c.json(result.body, 404);
    if (!result.value) {
      return c.json(errorBody("not_found", `no run "${workflowId}" of scheduler "${id}"`), 404);
    }
    return c.json({ data: result.value }, 200);
  });

  return app;
}
