/**
 * The bench's CSV endpoints in a process of their own (like a company's real server), so
 * generating the data does not compete with the worker's event loop. With an argument N it
 * listens on N loopback ports, each a source host of its own (the per-host fetch limit keys on
 * host:port), so companies on different hosts are not throttled as one. Prints its URLs on one
 * line, then serves until stdin closes or it is signalled:
 *   GET /csv/<prefix>/<rows>            generated rows (transcript URLs on example.test)
 *   GET /csv/<prefix>/<rows>?transcripts rows whose transcript URLs point back here
 *   GET /t/<id>.txt                     a four-line transcript
 *   GET /stats                          requests served, and the most served at once by one host
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { csvLine, generatedStream } from "./csv-data.ts";

/** Requests in flight per host (local port): the per-host limit holds per host. */
const active = new Map<number, number>();
let maxActive = 0;
let requests = 0;

function handle(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? "/", "http://source");
  if (url.pathname === "/stats") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ requests, maxActive }));
    return;
  }
  requests += 1;
  const port = req.socket.localPort ?? 0;
  const now = (active.get(port) ?? 0) + 1;
  active.set(port, now);
  maxActive = Math.max(maxActive, now);
  res.once("close", () => {
    active.set(port, (active.get(port) ?? 1) - 1);
  });
  const transcript = /^\/t\/([A-Za-z0-9_-]+)\.txt$/.exec(url.pathname);
  if (transcript) {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(
      `[30.04.2025 11:00:00] User: Hello, question ${transcript[1]}\n[30.04.2025 11:00:10] Assistant: Sure, go ahead.\n[30.04.2025 11:00:30] User: How many vacation days do I have left?\n[30.04.2025 11:00:40] Assistant: Twelve.\n`,
    );
    return;
  }
  const match = /^\/csv\/([A-Za-z0-9_-]+)\/(\d+)$/.exec(url.pathname);
  if (!match?.[1] || !match[2]) {
    res.writeHead(404).end("not found");
    return;
  }
  const prefix = match[1];
  const base = `http://${req.headers.host}`;
  const line = url.searchParams.has("transcripts")
    ? (i: number) => csvLine(prefix, i).replace("https://example.test", base)
    : (i: number) => csvLine(prefix, i);
  res.writeHead(200, { "content-type": "text/csv" });
  generatedStream(Number(match[2]), line).pipe(res);
}

const hosts = Math.max(1, Number(process.argv[2] ?? 1));
const urls = await Promise.all(
  Array.from(
    { length: hosts },
    () =>
      new Promise<string>((resolve) => {
        const server = createServer(handle);
        server.listen(0, "127.0.0.1", () => {
          const address = server.address();
          const port = typeof address === "object" && address ? address.port : 0;
          resolve(`http://127.0.0.1:${port}`);
        });
      }),
  ),
);
process.stdout.write(`${urls.join(" ")}\n`);
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));
