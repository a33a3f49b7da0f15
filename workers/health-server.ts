import { createServer, type Server } from "node:http";
import type { Logger } from "../adapters/logger.ts";
import type { RunningWorkers } from "./runtime.ts";

/**
 * Probes of a worker process for orchestrators: /livez (the process answers) and /readyz
 * (every worker of this process polling, Temporal and PostgreSQL reachable, shutdown not begun).
 */
export async function startWorkerHealthServer(options: {
  port: number;
  workers: RunningWorkers;
  stopping: () => boolean;
  log: Logger;
}): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : JSON.stringify(body));
    };
    if (path === "/livez") return reply(200, { status: "ok" });
    if (path === "/readyz") {
      const workers = options.workers.status();
      const dependencies = options.workers.dependencies();
      const ready =
        !options.stopping() &&
        Object.values(workers).every((w) => w.status === "RUNNING") &&
        Object.values(dependencies).every((d) => d.ok);
      return reply(ready ? 200 : 503, {
        status: ready ? "ready" : "not ready",
        stopping: options.stopping(),
        workers,
        dependencies,
      });
    }
    reply(404, { error: { code: "not_found", message: `no route for ${path}` } });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, "0.0.0.0", resolve);
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  options.log.info({ port }, "worker health server listening (/livez, /readyz)");
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
