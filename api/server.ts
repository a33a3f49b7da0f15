import { serve } from "@hono/node-server";
import { startAlertNotifier } from "../control-plane/alert-notifier.ts";
import { apiDefinitions } from "../control-plane/scheduler-registry.ts";
import { type ApiDeps, assertAdminAuthConfigured, createApp } from "./app.ts";

/**
 * Runs the API on Node (@hono/node-server): refuses a missing or unusable admin token first,
 * serves createApp's app on PORT, and starts the alert notifier beside it when a webhook is set.
 */

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
  // Scheduler ERROR / recovery notifications: evaluated on a timer, apart from any request.
  const notifier = deps.config.alerts.webhookUrl
    ? startAlertNotifier({ ...deps, definitions: () => apiDefinitions(deps.config) })
    : undefined;
  return {
    port,
    close: async () => {
      await notifier?.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
