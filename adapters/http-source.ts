import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import type { Readable } from "node:stream";
import { context, SpanKind, trace } from "@opentelemetry/api";
import { addressGuard, type NetworkRange } from "../domain/address-policy.ts";
import { PermanentSourceError, TransientSourceError } from "../domain/source-errors.ts";
import { decodedBody } from "./source-body.ts";
import {
  ALLOWED_PROTOCOLS,
  checkAllowedHost,
  checkPort,
  checkSourceUrl,
  DEFAULT_PORTS,
  describeUrl,
  type HostRule,
  namedException,
  originKey,
  redactUrlCredentials,
} from "./source-url.ts";
import { failSpan, tracer } from "./spans.ts";

/**
 * Fetching a company's files (CSV exports, transcripts) from URLs that the company controls:
 * http/https only; never an internal address (loopback, private, link-local, ...: checked on a
 * literal host and on every address a name resolves to, at connect time, on every hop) unless
 * the host is named in FETCH_ALLOWED_HOSTS or FETCH_ALLOW_PRIVATE_NETWORKS is on; only hosts on
 * FETCH_ALLOWED_HOSTS (when set); bounded redirects; credentials only to the origin they were
 * configured for; a time budget, a size cap and a minimum transfer rate. Errors say whether a
 * retry can help.
 */

export interface BasicCredentials {
  username: string;
  password: string;
}

export interface SourceRequest {
  url: string;
  credentials?: BasicCredentials | undefined;
  /** Whole-request budget: connect, headers and body. */
  timeoutMs: number;
  maxBytes: number;
  maxRedirects?: number;
  /** Aborts the request early, e.g. when Temporal cancels the activity. */
  signal?: AbortSignal | undefined;
  accept?: string;
  /** FETCH_ALLOWED_HOSTS: every hop (first URL and each redirect) must match one; empty: any. */
  allowedHosts?: readonly HostRule[] | undefined;
  /**
   * FETCH_ALLOW_PRIVATE_NETWORKS: internal addresses (loopback, private, link-local, ...) that
   * may be reached: `true` any, or these ranges. Off by default: then only hosts named in
   * `allowedHosts` may resolve to one.
   */
  allowPrivateNetworks?: boolean | readonly NetworkRange[] | undefined;
  /** FETCH_MIN_BYTES_PER_SECOND: a body slower than this over `rateWindowMs` is aborted (0: off). */
  minBytesPerSecond?: number | undefined;
  /** The window the transfer rate is averaged over (default 10 s). */
  rateWindowMs?: number | undefined;
  /** Bounds concurrent requests per host across workers; held until the body is done. */
  hostLimiter?: HostLimiter | undefined;
  /** What is fetched, for the trace: the span is named `fetch <purpose>`. */
  purpose?: "csv" | "transcript" | undefined;
}

/**
 * A limiter of concurrent requests per host (origin key `host:port`). `acquire` resolves to the
 * release function once a slot is free; openSource calls release exactly once.
 */
export interface HostLimiter {
  acquire(origin: string, signal?: AbortSignal): Promise<() => Promise<void> | void>;
}

export const DEFAULT_MIN_BYTES_PER_SECOND = 1024;
export const DEFAULT_RATE_WINDOW_MS = 10_000;

export interface SourceResponse {
  url: string;
  status: number;
  contentType: string;
  /** The body, decompressed, cut with an error once it passes maxBytes. */
  body: Readable;
}

function refusedAddress(host: string, address: string, reason: string): PermanentSourceError {
  const shown = host === address ? address : `${host} (${address})`;
  return new PermanentSourceError(
    `refused to connect to ${shown}: a ${reason} address is internal, not a company's server (name the host in FETCH_ALLOWED_HOSTS or set FETCH_ALLOW_PRIVATE_NETWORKS to allow it)`,
  );
}

/**
 * A DNS lookup that fails when any address of the name is internal. It runs inside the
 * connect, so the address checked is the address connected to: a name cannot resolve to a
 * public address for a check and to 127.0.0.1 for the connection.
 */
function guardedLookup(host: string, refusal: (address: string) => string | undefined) {
  return (
    hostname: string,
    options: LookupOptions,
    callback: (
      error: NodeJS.ErrnoException | null,
      address: string | LookupAddress[],
      family?: number,
    ) => void,
  ): void => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error, []);
      for (const { address } of addresses) {
        const reason = refusal(address);
        if (reason) return callback(refusedAddress(host, address, reason), []);
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first)
        return callback(Object.assign(new Error("no address"), { code: "ENOTFOUND" }), []);
      callback(null, first.address, first.family);
    });
  };
}

/**
 * Kept-alive connections of checked requests live in their own pools: a connection opened
 * without the address check (a host named in FETCH_ALLOWED_HOSTS) is never reused by a request
 * that needs it.
 */
const checkedAgents = {
  "http:": new HttpAgent({ keepAlive: true, timeout: 5_000 }),
  "https:": new HttpsAgent({ keepAlive: true, timeout: 5_000 }),
};

/** One HTTP GET; resolves once the status line and headers are in. */
async function get(
  url: URL,
  headers: Record<string, string>,
  signal: AbortSignal,
  refusal: ((address: string) => string | undefined) | undefined,
): Promise<IncomingMessage> {
  try {
    return await getOnce(url, headers, signal, refusal);
  } catch (error) {
    // A kept-alive connection the server closed just as it was reused: the request never
    // reached the server, so sending it once more on a new connection is safe (Node's advice).
    if ((error as { reusedSocket?: boolean }).reusedSocket && !signal.aborted) {
      return getOnce(url, headers, signal, refusal);
    }
    throw error;
  }
}

function getOnce(
  url: URL,
  headers: Record<string, string>,
  signal: AbortSignal,
  refusal: ((address: string) => string | undefined) | undefined,
): Promise<IncomingMessage> {
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, {
      method: "GET",
      headers,
      signal,
      ...(refusal
        ? {
            lookup: guardedLookup(url.hostname, refusal) as never,
            agent: checkedAgents[url.protocol === "https:" ? "https:" : "http:"],
          }
        : {}),
    });
    req.on("response", resolve);
    req.on("error", (error: NodeJS.ErrnoException) => {
      const reset = error.code === "ECONNRESET" || error.code === "EPIPE";
      reject(reset && req.reusedSocket ? Object.assign(error, { reusedSocket: true }) : error);
    });
    req.end();
  });
}

/**
 * Opens a source in a span of its own (`fetch csv`, `fetch transcript`), a child of the running
 * activity's, from the host-slot wait to the end of the body. Its attributes name the URL without
 * credentials or query string (describeUrl), never the credentials or the body.
 */
export async function openSource(request: SourceRequest): Promise<SourceResponse> {
  let target: URL | undefined;
  try {
    target = new URL(request.url);
  } catch {
    // openUntraced refuses it with its reason.
  }
  const span = tracer().startSpan(`fetch ${request.purpose ?? "source"}`, {
    kind: SpanKind.CLIENT,
    attributes: {
      "http.request.method": "GET",
      "url.full": describeUrl(request.url),
      ...(target
        ? {
            "server.address": target.hostname,
            "server.port": Number(target.port) || DEFAULT_PORTS[target.protocol] || 0,
          }
        : {}),
      ...(request.purpose ? { "livedash.fetch.purpose": request.purpose } : {}),
    },
  });
  let response: SourceResponse;
  try {
    response = await context.with(trace.setSpan(context.active(), span), () =>
      openUntraced(request),
    );
  } catch (error) {
    failSpan(span, error);
    span.end();
    throw error;
  }
  span.setAttribute("http.response.status_code", response.status);
  if (response.url !== target?.toString()) {
    span.setAttribute("livedash.fetch.final_url", describeUrl(response.url));
  }
  response.body.once("error", (error) => failSpan(span, error));
  response.body.once("close", () => span.end());
  return response;
}

async function openUntraced(request: SourceRequest): Promise<SourceResponse> {
  const maxRedirects = request.maxRedirects ?? 5;
  const timeout = AbortSignal.timeout(request.timeoutMs);
  const signal = request.signal ? AbortSignal.any([timeout, request.signal]) : timeout;
  const first = checkSourceUrl(request.url);
  const origin = first.origin;
  let url = first;
  const guard = addressGuard(request.allowPrivateNetworks);
  const mapError = (error: unknown) => fetchFailure(error, request, url, timeout);

  let release: (() => void) | undefined;
  if (request.hostLimiter) {
    const releaseSlot = await request.hostLimiter.acquire(originKey(first), signal);
    let released = false;
    release = () => {
      if (released) return;
      released = true;
      // A failing release must not turn a finished fetch into an unhandled rejection.
      Promise.resolve()
        .then(releaseSlot)
        .catch(() => undefined);
    };
  }

  try {
    for (let hop = 0; ; hop++) {
      // Checked before every request, so a redirect cannot lead to a host off the list.
      checkAllowedHost(url, request.allowedHosts, hop);
      // A host named in FETCH_ALLOWED_HOSTS is trusted whatever it resolves to.
      const refusal = namedException(url, request.allowedHosts) ? undefined : guard;
      const literal = url.hostname.replace(/^\[|\]$/g, "");
      if (refusal && isIP(literal)) {
        // A literal address is connected to without a lookup: check it here.
        const reason = refusal(literal);
        if (reason) {
          const error = refusedAddress(literal, literal, reason);
          throw hop === 0 ? error : new PermanentSourceError(`redirect refused: ${error.message}`);
        }
      }
      const headers: Record<string, string> = {
        accept: request.accept ?? "*/*",
        "accept-encoding": "gzip, deflate, br",
      };
      // Credentials go only to the origin they were configured for, never to a redirect target.
      if (request.credentials && url.origin === origin) {
        const token = Buffer.from(
          `${request.credentials.username}:${request.credentials.password}`,
        );
        headers.authorization = `Basic ${token.toString("base64")}`;
      }
      let response: IncomingMessage;
      try {
        response = await get(url, headers, signal, refusal);
      } catch (error) {
        const failure = mapError(error);
        throw hop > 0 && error instanceof PermanentSourceError
          ? new PermanentSourceError(`redirect refused: ${failure.message}`)
          : failure;
      }
      const status = response.statusCode ?? 0;
      const location = response.headers.location;

      if (status >= 300 && status < 400 && location) {
        response.destroy();
        if (hop >= maxRedirects) {
          throw new PermanentSourceError(`more than ${maxRedirects} redirects`);
        }
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          throw new PermanentSourceError("redirect to an invalid URL refused");
        }
        if (!ALLOWED_PROTOCOLS.has(next.protocol)) {
          throw new PermanentSourceError(`redirect to a ${next.protocol} URL refused`);
        }
        if (next.username || next.password) {
          throw new PermanentSourceError("redirect to a URL with embedded credentials refused");
        }
        try {
          checkPort(next);
        } catch (error) {
          throw new PermanentSourceError(`redirect refused: ${(error as Error).message}`);
        }
        url = next;
        continue;
      }
      if (status < 200 || status > 299) {
        response.destroy();
        throw statusFailure(status, headerText(response.headers["retry-after"]));
      }
      const declared = Number(response.headers["content-length"] ?? Number.NaN);
      if (
        Number.isFinite(declared) &&
        declared > request.maxBytes &&
        !response.headers["content-encoding"]
      ) {
        response.destroy();
        throw new PermanentSourceError(
          `the response is ${declared} bytes, over the limit of ${request.maxBytes}`,
        );
      }
      let body: Readable;
      try {
        body = decodedBody(
          response,
          {
            maxBytes: request.maxBytes,
            minBytesPerSecond: request.minBytesPerSecond ?? DEFAULT_MIN_BYTES_PER_SECOND,
            rateWindowMs: request.rateWindowMs ?? DEFAULT_RATE_WINDOW_MS,
          },
          mapError,
        );
      } catch (error) {
        response.destroy();
        throw error;
      }
      if (release) body.once("close", release);
      return {
        url: url.toString(),
        status,
        contentType: headerText(response.headers["content-type"]) ?? "",
        body,
      };
    }
  } catch (error) {
    release?.();
    throw error;
  }
}

function headerText(value: string | string[] | undefined): string | null {
  return (Array.isArray(value) ? value[0] : value) ?? null;
}

function statusFailure(status: number, retryAfter: string | null): Error {
  if (status === 401 || status === 403) {
    return new PermanentSourceError(`HTTP ${status}: the server refused the credentials`);
  }
  if (status === 408 || status === 429 || status >= 500) {
    const wait = retryAfter ? ` (retry-after ${retryAfter.slice(0, 40)})` : "";
    return new TransientSourceError(`HTTP ${status}${wait}`);
  }
  return new PermanentSourceError(`HTTP ${status}`);
}

function fetchFailure(
  error: unknown,
  request: SourceRequest,
  url: URL,
  timeout: AbortSignal,
): Error {
  if (error instanceof PermanentSourceError || error instanceof TransientSourceError) return error;
  if (timeout.aborted) {
    return new TransientSourceError(`timed out after ${request.timeoutMs} ms`);
  }
  if (request.signal?.aborted) {
    return new TransientSourceError("the request was cancelled");
  }
  const err = error as NodeJS.ErrnoException;
  const cause = err.code ?? err.message;
  return new TransientSourceError(`request to ${url.host} failed: ${redactUrlCredentials(cause)}`);
}
