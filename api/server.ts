import { serve } from "@hono/node-server";
import { type ApiDeps, assertAdminAuthConfigured, createApp } from "./app.ts";

export async function startApiServer(deps: ApiDeps) {
  assertAdminAuthConfigured(deps.config);
  if (deps.config.admin.token === undefined) {
    deps.log.warn(
      "ADMIN_API_INSECURE=true: the admin API accepts requests without a token (development only)",
    );
  }
  const app = createApp(deps);
  const server = serve({ fetch: app.fetch, port: deps.config.port, hostname: "0.0.0.0" });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : deps.config.port;
  deps.log.info({ port }, "API listening");
  return {
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
