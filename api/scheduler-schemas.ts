import { z } from "@hono/zod-openapi";
import { SCHEDULER_STATES } from "../control-plane/scheduler-state.ts";
import { SCHEDULER_ID, SCHEDULER_ID_HINT } from "../domain/scheduler-id.ts";
import { ErrorSchema } from "./envelope.ts";

/**
 * The admin API's scheduler documents (a scheduler, a run and its live progress, an action and
 * its result, an orphaned schedule) as zod schemas: they validate requests and are the OpenAPI
 * components the document names. Shared by the schedulers, runs and orphaned-schedules apps.
 */

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
    companyId: z.string().nullable().openapi({
      description: "csv-import: the company being imported (null before its first heartbeat)",
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

export const RunSchema = z
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

export const SchedulerSchema = z
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

export const ActionResultSchema = z
  .object({
    schedulerId: z.string(),
    action: z.string(),
    state: z.enum(SCHEDULER_STATES),
    detail: z.string().optional(),
  })
  .openapi("ActionResult");

export const errors = {
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

export const OrphanSchema = z
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

export const IdParams = z.object({
  id: z
    .string()
    .regex(SCHEDULER_ID, SCHEDULER_ID_HINT)
    .openapi({
      param: { name: "id", in: "path" },
      example: "csv-import",
    }),
});
