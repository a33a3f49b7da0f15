import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../api/app.ts";
import { silentLog, startTestStack, type TestStack } from "./support/harness.ts";

/** The API reference page and the OpenAPI document it renders, with the probe routes in it. */
describe("API docs", () => {
  let stack: TestStack;
  let app: ReturnType<typeof createApp>;

  beforeAll(async () => {
    stack = await startTestStack({ env: { ADMIN_API_TOKEN: "docs-test-admin-token-0123456789" } });
    app = createApp({ config: stack.config, client: stack.client, db: stack.db, log: silentLog });
  });

  afterAll(async () => {
    await stack?.close();
  });

  it("serves the reference page at /api/docs without a token, on the OpenAPI document", async () => {
    const response = await app.request("/api/docs");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/html");
    const page = await response.text();
    expect(page).toContain("SwaggerUIBundle");
    expect(page).toContain("/api/openapi.json");
  });

  it("documents the probe and health routes with their status codes and bodies", async () => {
    const doc = (await (await app.request("/api/openapi.json")).json()) as {
      paths: Record<
        string,
        Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>
      >;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    const livez = doc.paths["/livez"]?.get;
    expect(Object.keys(livez?.responses ?? {})).toEqual(["200"]);
    const readyz = doc.paths["/readyz"]?.get;
    expect(Object.keys(readyz?.responses ?? {}).sort()).toEqual(["200", "503"]);
    const health = doc.paths["/api/admin/schedulers/health"];
    expect(Object.keys(health ?? {}).sort()).toEqual(["get", "head"]);
    expect(Object.keys(health?.get?.responses ?? {}).sort()).toEqual(["200", "503"]);
    expect(health?.get?.responses["200"]?.content).toHaveProperty("application/json");
    expect(Object.keys(doc.components.schemas.SchedulerHealth?.properties ?? {}).sort()).toEqual([
      "details",
      "healthy",
      "schedulers",
      "status",
      "timestamp",
    ]);
    expect(Object.keys(doc.components.schemas.Readiness?.properties ?? {}).sort()).toEqual([
      "checks",
      "status",
    ]);
  });

  it("the documented bodies are what the routes answer", async () => {
    const health = (await (await app.request("/api/admin/schedulers/health")).json()) as object;
    expect(Object.keys(health).sort()).toEqual([
      "details",
      "healthy",
      "schedulers",
      "status",
      "timestamp",
    ]);
    const ready = (await (await app.request("/readyz")).json()) as object;
    expect(Object.keys(ready).sort()).toEqual(["checks", "status"]);
  });
});
