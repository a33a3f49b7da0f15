import { swaggerUI } from "@hono/swagger-ui";
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { SCHEDULER_STATES } from "../control-plane/scheduler-state.ts";

/**
 * The open probe routes (/livez, /readyz, the scheduler health) in the OpenAPI document, and the
 * API reference page on it. The probes keep their plain handlers in app.ts (they must answer
 * even when request validation could not); only their documentation is registered here.
 */

const Liveness = z.object({ status: z.literal("ok") }).openapi("Liveness");

const Readiness = z
  .object({
    status: z.enum(["ready", "not ready"]),
    checks: z.array(
      z.object({
        name: z.string().openapi({ example: "postgres" }),
        ok: z.boolean(),
        detail: z.string().optional().openapi({ description: "why the check failed" }),
      }),
    ),
  })
  .openapi("Readiness");

const SchedulerHealth = z
  .object({
    healthy: z.boolean(),
    status: z.enum(["healthy", "degraded", "unhealthy"]),
    timestamp: z.string().openapi({ example: "2024-01-15T10:30:00.000Z" }),
    schedulers: z.object({ total: z.number(), running: z.number(), errors: z.number() }),
    details: z.record(
      z.string(),
      z.object({
        status: z.enum(SCHEDULER_STATES),
        healthy: z.boolean(),
        lastSuccess: z.string().nullable(),
      }),
    ),
  })
  .openapi("SchedulerHealth");

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

export const API_DOCS_PATH = "/api/docs";

// biome-ignore lint/suspicious/noExplicitAny: any app environment; only the registry is used
export function registerProbeDocs(app: OpenAPIHono<any>, healthPath: string): void {
  const registry = app.openAPIRegistry;
  registry.registerPath({
    method: "get",
    path: "/livez",
    tags: ["probes"],
    summary: "Liveness: the process answers (no dependency is checked)",
    responses: { 200: json(Liveness, "alive") },
  });
  registry.registerPath({
    method: "get",
    path: "/readyz",
    tags: ["probes"],
    summary: "Readiness: Temporal and PostgreSQL answer and the process is not shutting down",
    responses: {
      200: json(Readiness, "ready"),
      503: json(Readiness, "not ready; the failing checks say why"),
    },
  });
  for (const method of ["get", "head"] as const) {
    registry.registerPath({
      method,
      path: healthPath,
      tags: ["probes"],
      summary:
        method === "get"
          ? "Every scheduler's health (no token needed)"
          : "The scheduler health as a status code only",
      responses: {
        200: method === "get" ? json(SchedulerHealth, "all healthy") : { description: "healthy" },
        503:
          method === "get"
            ? json(SchedulerHealth, "a scheduler is unhealthy")
            : { description: "unhealthy" },
      },
    });
  }
}

/** Swagger UI on the OpenAPI document; the page loads Swagger UI's assets from its CDN. */
export function registerApiDocsPage(
  // biome-ignore lint/suspicious/noExplicitAny: any app environment
  app: OpenAPIHono<any>,
  openApiPath: string,
): void {
  app.get(API_DOCS_PATH, swaggerUI({ url: openApiPath, title: "LiveDash scheduler API" }));
}
