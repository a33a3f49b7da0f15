import { serve } from "@hono/node-server";
import { createApp } from "./app.ts";

export async function startApiServer(deps: Parameters<typeof createApp>[0]) {
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
