import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Env } from "hono";
import {
  ActionConflictError,
  type SchedulerAdmin,
  UnknownSchedulerError,
} from "../control-plane/admin-service.ts";
import { SCHEDULER_STATES } from "../control-plane/scheduler-state.ts";
import { SCHEDULER_ID, SCHEDULER_ID_HINT } from "../domain/scheduler-id.ts";
import { dataOf, ErrorSchema, errorBody } from "./envelope.ts";

const OVERLAP = [
  "SKIP",
  "BUFFER_ONE",
  "BUFFER_ALL",
  "CANCEL_OTHER",
  "TERMINATE_OTHER",
  "ALLOW_ALL",
] as const;
/** Longest backfill one request may ask for: a year of runs is already a lot of work. */
const MAX_BACKFILL_MS = 366 * 24 * 3_600_000;

const InFlightActivitySchema = z
  .object({
    activityType: z.string().openapi({ example: "importCompanyCsv" }),
    activityId: z.string(),
    state: z.string().openapi({ example: "STARTED" }),
    attempt: z.number(),
    lastHeartbeatAt: z.string().nullable(),
    rowsRead: z.number().nullable().openapi({
      description: "csv-import: rows this company's import has read and committed so far",
    }),
  })
  .openapi("InFlightActivity");

const RunProgressSchema = z
  .object({
    source: z.enum(["workflow", "run-record"]).openapi({
      description:
        "workflow: the run's live counters (a workflow query); run-record: the totals written at the last continue-as-new, when no worker answered",
    }),
    updatedAt: z.string().openapi({
      description: "when the progress last changed (a counter or an in-flight heartbeat)",
    }),
    executions: z.number(),
    items: z
      .object({
        taken: z.number().openapi({ description: "items listed or claimed by the run so far" }),
        done: z.number(),
        inFlight: z.number(),
        waiting: z.number(),
      })
      .nullable(),
    companies: z
      .object({ done: z.number(), total: z.number().nullable() })
      .nullable()
      .openapi({ description: "csv-import: companies finished out of the ACTIVE companies" }),
    rowsRead: z.number().nullable().openapi({
      description: "csv-import: rows read so far, companies still in flight included",
    }),
    inFlight: z.object({
      count: z.number(),
      activities: z.array(InFlightActivitySchema).openapi({ description: "the first 20" }),
    }),
    counts: z.unknown(),
  })
  .openapi("RunProgress");

const RunSchema = z
  .object({
    workflowId: z.string(),
    runId: z.string(),
    outcome: z.string().openapi({ example: "SUCCEEDED" }),
    scheduledAt: z.string().nullable(),
    startedAt: z.string(),
    finishedAt: z.string().nullable(),
    durationMs: z.number().nullable(),
    counts: z.unknown(),
    error: z.string().nullable(),
    progress: RunProgressSchema.optional().openapi({
      description: "a RUNNING run's live progress; absent once the run finished",
    }),
  })
  .openapi("Run");

const SchedulerSchema = z
  .object({
    id: z.string().openapi({ example: "csv-import" }),
    name: z.string(),
    description: z.string(),
    scheduleId: z.string(),
    taskQueue: z.string(),
    workflowType: z.string(),
    spec: z
      .object({ cron: z.string(), timeZone: z.string() })
      .openapi({ description: "The live spec Temporal runs (from describe)" }),
    configuredSpec: z.object({ cron: z.string(), timeZone: z.string() }),
    drift: z.array(z.string()).openapi({
      description: "What differs from the configuration; the next reconcile puts it back",
    }),
    policies: z.object({ overlap: z.string(), catchupWindowMs: z.number() }),
    skipped: z.object({ overlap: z.number(), missedCatchupWindow: z.number() }),
    critical: z.boolean(),
    state: z.enum(SCHEDULER_STATES),
    healthy: z.boolean(),
    reason: z.string().nullable(),
    pause: z.object({
      paused: z.boolean(),
      note: z.string().nullable(),
      by: z.string().nullable(),
      at: z.string().nullable(),
    }),
    nextRuns: z.array(z.string()),
    lastSuccess: z.string().nullable(),
    lastRuns: z.array(RunSchema),
    metrics: z.object({
      runs: z.number(),
      successes: z.number(),
      failures: z.number(),
      successRate: z.number().nullable(),
      avgDurationMs: z.number().nullable(),
      p95DurationMs: z.number().nullable(),
      lastLatenessMs: z.number().nullable().openapi({
        description: "start minus scheduled time of the latest scheduled run",
      }),
      avgLatenessMs: z.number().nullable(),
      p95LatenessMs: z.number().nullable(),
    }),
    actions: z.object({
      skippedOverlap: z.number().nullable().openapi({
        description: "runs Temporal skipped because the previous run was still going",
      }),
      missedCatchupWindow: z.number().nullable().openapi({
        description: "runs Temporal never started because they fell outside the catch-up window",
      }),
    }),
    workers: z.array(z.object({ identity: z.string(), lastAccessTime: z.string().nullable() })),
    temporalUiUrl: z.string(),
  })
  .openapi("Scheduler");

export const ActionBodySchema = z
  .object({
    action: z.enum([
      "pause",
      "resume",
      "trigger",
      "backfill",
      "start",
      "stop",
      "startAll",
      "stopAll",
    ]),
    schedulerId: z.string().regex(SCHEDULER_ID, SCHEDULER_ID_HINT).optional(),
    note: z.string().trim().min(1).max(500).optional(),
    overlap: z.enum(OVERLAP).optional(),
    start: z.iso.datetime({ offset: true }).optional(),
    end: z.iso.datetime({ offset: true }).optional(),
  })
  .strict()
  .superRefine((body, ctx) => {
    const single = !["startAll", "stopAll"].includes(body.action);
    if (single && !body.schedulerId) {
      ctx.addIssue({
        code: "custom",
        path: ["schedulerId"],
        message: `required for ${body.action}`,
      });
    }
    if (body.action === "backfill") {
      if (!body.start)
        ctx.addIssue({ code: "custom", path: ["start"], message: "required for backfill" });
      if (!body.end)
        ctx.addIssue({ code: "custom", path: ["end"], message: "required for backfill" });
      if (body.start && body.end) {
        const span = Date.parse(body.end) - Date.parse(body.start);
        if (span <= 0)
          ctx.addIssue({ code: "custom", path: ["end"], message: "must be after start" });
        else if (span > MAX_BACKFILL_MS) {
          ctx.addIssue({
            code: "custom",
            path: ["end"],
            message: "a backfill may span at most 366 days",
          });
        }
      }
    } else {
      for (const field of ["start", "end"] as const) {
        if (body[field])
          ctx.addIssue({ code: "custom", path: [field], message: "only for backfill" });
      }
    }
    if (body.overlap && body.action !== "trigger" && body.action !== "backfill") {
      ctx.addIssue({ code: "custom", path: ["overlap"], message: "only for trigger and backfill" });
    }
  })
  .openapi("SchedulerAction");

const ActionResultSchema = z
  .object({
    schedulerId: z.string(),
    action: z.string(),
    state: z.enum(SCHEDULER_STATES),
    detail: z.string().optional(),
  })
  .openapi("ActionResult");

const errors = {
  400: { description: "Invalid request", content: { "application/json": { schema: ErrorSchema } } },
  401: {
    description: "Missing or wrong admin token",
    content: { "application/json": { schema: ErrorSchema } },
  },
  404: {
    description: "Unknown scheduler",
    content: { "application/json": { schema: ErrorSchema } },
  },
};

const listRoute = createRoute({
  method: "get",
  path: "/api/admin/schedulers",
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

const OrphanSchema = z
  .object({
    scheduleId: z.string(),
    schedulerId: z.string().nullable(),
    taskQueue: z.string().nullable(),
    workflowType: z.string().nullable(),
    paused: z.boolean(),
    pollers: z.number(),
    reason: z.string(),
  })
  .openapi("OrphanedSchedule");

const orphansRoute = createRoute({
  method: "get",
  path: "/api/admin/orphaned-schedules",
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

const IdParams = z.object({
  id: z
    .string()
    .regex(SCHEDULER_ID, SCHEDULER_ID_HINT)
    .openapi({
      param: { name: "id", in: "path" },
      example: "csv-import",
    }),
});

const getRoute = createRoute({
  method: "get",
  path: "/api/admin/schedulers/{id}",
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

const runsRoute = createRoute({
  method: "get",
  path: "/api/admin/schedulers/{id}/runs",
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
  path: "/api/admin/schedulers/{id}/runs/{workflowId}",
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

const actionRoute = createRoute({
  method: "post",
  path: "/api/admin/schedulers",
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

/** Maps service errors onto the envelope; anything else is the global error handler's. */
async function answer<T>(run: () => Promise<T>) {
  try {
    return { ok: true as const, value: await run() };
  } catch (error) {
    if (error instanceof UnknownSchedulerError) {
      return {
        ok: false as const,
        status: 404 as const,
        body: errorBody("not_found", error.message),
      };
    }
    if (error instanceof ActionConflictError) {
      return {
        ok: false as const,
        status: 409 as const,
        body: errorBody("conflict", error.message),
      };
    }
    throw error;
  }
}

export function registerAdminRoutes<E extends Env>(app: OpenAPIHono<E>, admin: SchedulerAdmin) {
  app.openapi(listRoute, async (c) => c.json({ data: await admin.list() }, 200));
  app.openapi(orphansRoute, async (c) => c.json({ data: await admin.orphans() }, 200));

  app.openapi(getRoute, async (c) => {
    const result = await answer(() => admin.get(c.req.valid("param").id));
    return result.ok ? c.json({ data: result.value }, 200) : c.json(result.body, 404);
  });

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
}
