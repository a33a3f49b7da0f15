import { swaggerUI } from "@hono/swagger-ui";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { Hono } from "hono";

/**
 * The API's documentation, open like the probes: the OpenAPI 3.1 document at /api/openapi.json,
 * built from every mounted OpenAPI app's routes, and the reference page (Swagger UI, its assets
 * from its CDN) on it at /api/docs.
 */

export const OPENAPI_PATH = "/api/openapi.json";
export const API_DOCS_PATH = "/api/docs";

const DOCUMENT = {
  openapi: "3.1.0",
  info: {
    title: "LiveDash scheduler admin API",
    version: "1.0.0",
    description: "Schedulers on Temporal: state, runs and operator actions.",
  },
};

/** Mount last: the document is read from `root`'s registry, which the other apps fill. */
// biome-ignore lint/suspicious/noExplicitAny: any app environment; only the registry is used
export function docsApp(root: OpenAPIHono<any>) {
  root.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
  });
  const app = new Hono();
  app.get(OPENAPI_PATH, (c) => {
    try {
      return c.json(root.getOpenAPI31Document(DOCUMENT));
    } catch (error) {
      // As OpenAPIHono's own doc31() route answers a document that cannot be generated.
      return c.json(error as object, 500);
    }
  });
  app.get(API_DOCS_PATH, swaggerUI({ url: OPENAPI_PATH, title: "LiveDash scheduler API" }));
  return app;
}
