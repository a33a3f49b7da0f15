import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Database } from "../adapters/db/client.ts";
import { companyHealthPage, failingCompanyCounts } from "../adapters/db/company-import-health.ts";
import { CompanyStatus } from "../adapters/db/generated/prisma/enums.ts";
import { dataOf, ErrorSchema } from "./envelope.ts";

/**
 * The companies resource, mounted at /api/admin/companies: CSV import health per company (last
 * success, consecutive failures, last error), paged, with the failing counts per region.
 */

const CompanyHealthSchema = z
  .object({
    companyId: z.string(),
    name: z.string(),
    status: z.enum(CompanyStatus),
    region: z.string().nullable(),
    lastAttemptAt: z.string().nullable(),
    lastSuccessAt: z.string().nullable(),
    lastFailureAt: z.string().nullable(),
    consecutiveFailures: z.number().int(),
    lastError: z.string().nullable(),
  })
  .openapi("CompanyImportHealth");

const healthRoute = createRoute({
  method: "get",
  path: "/health",
  summary: "CSV import health per company: last success, consecutive failures, last error",
  security: [{ bearer: [] }],
  request: {
    query: z.object({
      failing: z
        .enum(["true", "false"])
        .optional()
        .openapi({ description: "true: only companies whose latest imports failed" }),
      minFailures: z.coerce
        .number()
        .int()
        .min(1)
        .max(10_000)
        .optional()
        .openapi({ description: "with failing=true: at least this many in a row (default 1)" }),
      region: z.string().max(64).optional(),
      status: z.enum(CompanyStatus).optional(),
      limit: z.coerce.number().int().min(1).max(500).default(50),
      after: z.uuid().optional().openapi({ description: "nextCursor of the previous page" }),
    }),
  },
  responses: {
    200: {
      description: "A page of companies, by id, and the failing counts of ACTIVE companies",
      content: {
        "application/json": {
          schema: dataOf(
            z.object({
              companies: z.array(CompanyHealthSchema),
              nextCursor: z.string().nullable(),
              failing: z.array(
                z.object({
                  region: z.string(),
                  minConsecutiveFailures: z.number(),
                  companies: z.number(),
                }),
              ),
            }),
          ),
        },
      },
    },
    400: { description: "Invalid query", content: { "application/json": { schema: ErrorSchema } } },
    401: {
      description: "Missing or wrong admin token",
      content: { "application/json": { schema: ErrorSchema } },
    },
  },
});

export function companiesApp(db: Database) {
  const app = new OpenAPIHono();
  app.openapi(healthRoute, async (c) => {
    const { failing, ...query } = c.req.valid("query");
    const [page, counts] = await Promise.all([
      companyHealthPage(db, { ...query, failing: failing === "true" }),
      failingCompanyCounts(db),
    ]);
    return c.json({ data: { ...page, failing: counts } }, 200);
  });
  return app;
}
