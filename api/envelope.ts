import { z } from "@hono/zod-openapi";

/** Every admin API response is `{ data }` or `{ error }`: one envelope, whatever the route. */

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "validation_failed" }),
      message: z.string(),
      issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    }),
  })
  .openapi("Error");

export type ErrorBody = z.infer<typeof ErrorSchema>;

export function errorBody(
  code: string,
  message: string,
  issues?: { path: string; message: string }[],
): ErrorBody {
  return { error: { code, message, ...(issues ? { issues } : {}) } };
}

export function dataOf<T extends z.ZodType>(schema: T) {
  return z.object({ data: schema });
}
