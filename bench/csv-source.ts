/**
 * The bench's CSV endpoints in a process of their own (like a company's real server), so
 * generating the data does not compete with the worker's event loop. Prints its URL, then serves
 * GET /csv/<prefix>/<rows> until stdin closes or it is signalled.
 */
import { createServer } from "node:http";
import { csvStream } from "./support.ts";

const server = createServer((req, res) => {
  const match = /^\/csv\/([A-Za-z0-9_-]+)\/(\d+)$/.exec(req.url ?? "");
  if (!match?.[1] || !match[2]) {
    res.writeHead(404).end("not found");
    return;
  }
  res.writeHead(200, { "content-type": "text/csv" });
  csvStream(match[1], Number(match[2])).pipe(res);
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  process.stdout.write(`http://127.0.0.1:${port}\n`);
});
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));
