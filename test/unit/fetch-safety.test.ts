import { createServer, type Server } from "node:http";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HostLimiter, openSource, type SourceRequest } from "../../adapters/http-source.ts";
import { parseNetworkRange, refusedAddressReason } from "../../domain/address-policy.ts";
import { PermanentSourceError, TransientSourceError } from "../../domain/source-errors.ts";

/**
 * What openSource refuses to reach and how it fails, against real local servers. The server
 * listens on "::" (IPv6 and IPv4), so [::1]:port and 127.0.0.1:port are the same server: the
 * tests open ::1 and expect 127.0.0.1 (and every other spelling of an internal address) to be
 * refused before any request reaches it.
 */

let server: Server;
let port: number;
const requests: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push(req.url ?? "");
    switch (req.url) {
      case "/ok":
        res.writeHead(200, { "content-type": "text/plain" }).end("hello");
        return;
      case "/to-loopback-v4":
        res.writeHead(302, { location: `http://127.0.0.1:${port}/ok` }).end();
        return;
      case "/to-localhost":
        res.writeHead(302, { location: `http://localhost:${port}/ok` }).end();
        return;
      case "/to-hex":
        res.writeHead(302, { location: `http://0x7f000001:${port}/ok` }).end();
        return;
      case "/fake-gzip":
        res.writeHead(200, { "content-encoding": "gzip" }).end("plain text, not gzip");
        return;
      case "/fake-br":
        res.writeHead(200, { "content-encoding": "br" }).end("plain text, not brotli at all");
        return;
      case "/real-gzip":
        res.writeHead(200, { "content-encoding": "gzip" }).end(gzipSync("zipped"));
        return;
      case "/unknown-encoding":
        res.writeHead(200, { "content-encoding": "zstd-ish" }).end("x");
        return;
      case "/trickle": {
        res.writeHead(200, { "content-type": "text/plain" });
        const timer = setInterval(() => res.write("x"), 200);
        res.on("close", () => clearInterval(timer));
        return;
      }
      case "/steady": {
        res.writeHead(200, { "content-type": "text/plain" });
        let sent = 0;
        const timer = setInterval(() => {
          res.write(Buffer.alloc(4096, 120));
          if (++sent === 15) {
            clearInterval(timer);
            res.end();
          }
        }, 100);
        res.on("close", () => clearInterval(timer));
        return;
      }
      default:
        res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "::", resolve));
  const address = server.address();
  port = typeof address === "object" && address ? address.port : 0;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

/** Only ::1 (the test's own way in) is opened; everything else internal stays refused. */
const base = (extra: Partial<SourceRequest> = {}): SourceRequest => ({
  url: "",
  timeoutMs: 5_000,
  maxBytes: 1024 * 1024,
  allowPrivateNetworks: [{ address: "::1", prefix: 128 }],
  ...extra,
});

async function read(request: SourceRequest): Promise<string> {
  const source = await openSource(request);
  const chunks: Buffer[] = [];
  for await (const chunk of source.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

async function failure(request: SourceRequest): Promise<Error> {
  try {
    await read(request);
  } catch (error) {
    return error as Error;
  }
  throw new Error(`expected ${request.url} to fail`);
}

describe("internal addresses", () => {
  it("classifies every internal range, in IPv4, IPv6 and IPv4-in-IPv6 forms; public ones pass", () => {
    const refused = [
      "127.0.0.1",
      "127.255.255.254",
      "10.1.2.3",
      "172.16.0.1",
      "172.31.255.255",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "224.0.0.1",
      "255.255.255.255",
      "::",
      "::1",
      "fe80::1",
      "fc00::1",
      "fd12:3456::1",
      "ff02::1",
      "::ffff:127.0.0.1",
      "::ffff:a9fe:a9fe",
      "::127.0.0.1",
      "64:ff9b::a00:1",
      "2002:c0a8:101::1",
    ];
    for (const address of refused) {
      expect(refusedAddressReason(address), address).toBeDefined();
    }
    expect(refusedAddressReason("169.254.169.254")).toContain("link-local");
    expect(refusedAddressReason("::ffff:127.0.0.1")).toContain("loopback");
    for (const address of [
      "93.184.216.34",
      "8.8.8.8",
      "2606:4700::1111",
      "172.32.0.1",
      "::ffff:8.8.8.8",
    ]) {
      expect(refusedAddressReason(address), address).toBeUndefined();
    }
    expect(parseNetworkRange("10.1.0.0/16")).toEqual({ address: "10.1.0.0", prefix: 16 });
    expect(parseNetworkRange("::1")).toEqual({ address: "::1", prefix: 128 });
    expect(parseNetworkRange("10.1.0.0/33")).toBeUndefined();
    expect(parseNetworkRange("intranet")).toBeUndefined();
  });

  it("the opened address works; 127.0.0.1 in every notation is refused before any request", async () => {
    expect(await read(base({ url: `http://[::1]:${port}/ok` }))).toBe("hello");
    const spellings = [
      "127.0.0.1",
      "0x7f000001",
      "2130706433",
      "0177.0.0.1",
      "127.1",
      "0x7f.1",
      "[::ffff:127.0.0.1]",
      "[::ffff:7f00:1]",
      "0.0.0.0",
      "0",
      "[::]",
    ];
    const before = requests.length;
    for (const host of spellings) {
      const error = await failure(base({ url: `http://${host}:${port}/ok` }));
      expect(error, host).toBeInstanceOf(PermanentSourceError);
      expect(error.message, host).toMatch(
        /^refused to connect to .*: a .* address is internal, not a company's server \(name the host in FETCH_ALLOWED_HOSTS or set FETCH_ALLOW_PRIVATE_NETWORKS to allow it\)$/,
      );
    }
    expect(requests.length).toBe(before);
    const metadata = await failure(base({ url: "http://169.254.169.254/latest/meta-data/" }));
    expect(metadata.message).toContain("169.254.169.254: a link-local (cloud metadata lives here)");
  });

  it("checks the addresses a name resolves to, at connect time", async () => {
    const before = requests.length;
    const error = await failure(base({ url: `http://localhost:${port}/ok` }));
    expect(error).toBeInstanceOf(PermanentSourceError);
    expect(error.message).toMatch(/^refused to connect to localhost \((127\.0\.0\.1|::1)\)/);
    // localhost may resolve to ::1 (opened) and 127.0.0.1: any refused address refuses the name.
    expect(requests.length).toBe(before);
  });

  it("checks every redirect hop", async () => {
    for (const path of ["/to-loopback-v4", "/to-localhost", "/to-hex"]) {
      const before = requests.filter((r) => r === "/ok").length;
      const error = await failure(base({ url: `http://[::1]:${port}${path}` }));
      expect(error, path).toBeInstanceOf(PermanentSourceError);
      expect(error.message, path).toMatch(/^redirect refused: refused to connect to /);
      expect(requests.filter((r) => r === "/ok").length).toBe(before);
    }
  });

  it("FETCH_ALLOWED_HOSTS names a trusted host; FETCH_ALLOW_PRIVATE_NETWORKS=true opens all", async () => {
    const named = base({
      url: `http://localhost:${port}/ok`,
      allowPrivateNetworks: false,
      allowedHosts: [{ host: "localhost", subdomains: false, port }],
    });
    expect(await read(named)).toBe("hello");
    expect(
      await read(base({ url: `http://127.0.0.1:${port}/ok`, allowPrivateNetworks: true })),
    ).toBe("hello");
  });

  it("a port of another protocol is refused permanently, without a connection", async () => {
    const error = await failure(base({ url: "http://[::1]:6000/x" }));
    expect(error).toBeInstanceOf(PermanentSourceError);
    expect(error.message).toBe(
      'port 6000 is refused: it belongs to another protocol (the WHATWG fetch "bad port" list)',
    );
  });
});

describe("content encodings", () => {
  it("a body that is not what Content-Encoding claims is a permanent failure in plain words", async () => {
    expect(await read(base({ url: `http://[::1]:${port}/real-gzip` }))).toBe("zipped");
    const gzip = await failure(base({ url: `http://[::1]:${port}/fake-gzip` }));
    expect(gzip).toBeInstanceOf(PermanentSourceError);
    expect(gzip.message).toBe(
      "the body is not valid gzip although the server said Content-Encoding: gzip",
    );
    const br = await failure(base({ url: `http://[::1]:${port}/fake-br` }));
    expect(br).toBeInstanceOf(PermanentSourceError);
    expect(br.message).toBe(
      "the body is not valid brotli although the server said Content-Encoding: br",
    );
    const unknown = await failure(base({ url: `http://[::1]:${port}/unknown-encoding` }));
    expect(unknown).toBeInstanceOf(PermanentSourceError);
    expect(unknown.message).toContain("Content-Encoding: zstd-ish, which is not supported");
  });
});

describe("minimum transfer rate", () => {
  it("a trickling server is aborted as a transient failure; a steady one is read whole", async () => {
    const started = Date.now();
    const error = await failure(
      base({ url: `http://[::1]:${port}/trickle`, minBytesPerSecond: 100, rateWindowMs: 1_000 }),
    );
    expect(error).toBeInstanceOf(TransientSourceError);
    expect(error.message).toBe(
      "the server sent less than 100 bytes per second over 1 s (FETCH_MIN_BYTES_PER_SECOND): transfer aborted",
    );
    expect(Date.now() - started).toBeLessThan(4_000);
    const body = await read(
      base({ url: `http://[::1]:${port}/steady`, minBytesPerSecond: 1024, rateWindowMs: 500 }),
    );
    expect(body.length).toBe(15 * 4096);
  });

  it("time the consumer holds the body back does not count against the server", async () => {
    const source = await openSource(
      base({ url: `http://[::1]:${port}/steady`, minBytesPerSecond: 1024, rateWindowMs: 500 }),
    );
    let bytes = 0;
    for await (const chunk of source.body) {
      bytes += (chunk as Buffer).length;
      // A slow consumer (a database insert): the body waits, the server is not to blame.
      if (bytes === (chunk as Buffer).length) await new Promise((r) => setTimeout(r, 1_500));
    }
    expect(bytes).toBe(15 * 4096);
  });
});

describe("host limiter", () => {
  function countingLimiter() {
    const events: string[] = [];
    const limiter: HostLimiter = {
      async acquire(origin) {
        events.push(`acquire ${origin}`);
        return () => {
          events.push(`release ${origin}`);
        };
      },
    };
    return { events, limiter };
  }
  const settle = () => new Promise((r) => setTimeout(r, 20));

  it("is acquired per host:port before connecting and released once when the body ends", async () => {
    const { events, limiter } = countingLimiter();
    expect(await read(base({ url: `http://[::1]:${port}/ok`, hostLimiter: limiter }))).toBe(
      "hello",
    );
    await settle();
    expect(events).toEqual([`acquire [::1]:${port}`, `release [::1]:${port}`]);
  });

  it("is released once when opening fails, the body errors or the consumer destroys it", async () => {
    const opening = countingLimiter();
    await failure(base({ url: `http://[::1]:${port}/missing`, hostLimiter: opening.limiter }));
    await failure(base({ url: `http://127.0.0.1:${port}/ok`, hostLimiter: opening.limiter }));
    await settle();
    expect(opening.events.filter((e) => e.startsWith("release"))).toHaveLength(2);

    const body = countingLimiter();
    await failure(base({ url: `http://[::1]:${port}/fake-gzip`, hostLimiter: body.limiter }));
    await settle();
    expect(body.events.filter((e) => e.startsWith("release"))).toHaveLength(1);

    const destroyed = countingLimiter();
    const source = await openSource(
      base({ url: `http://[::1]:${port}/steady`, hostLimiter: destroyed.limiter }),
    );
    source.body.destroy();
    source.body.destroy(new Error("again"));
    await settle();
    expect(destroyed.events).toEqual([`acquire [::1]:${port}`, `release [::1]:${port}`]);
  });

  it("an invalid URL fails before the limiter is asked", async () => {
    const { events, limiter } = countingLimiter();
    await failure(base({ url: "ftp://example.test/x", hostLimiter: limiter }));
    expect(events).toEqual([]);
  });
});
