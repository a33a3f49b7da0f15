import { Readable, Transform, type TransformCallback } from "node:stream";

/**
 * Fetching a company's files (CSV exports, transcripts) from URLs that the company controls:
 * http/https only, only hosts on FETCH_ALLOWED_HOSTS (when set), bounded redirects, credentials
 * only to the origin they were configured for, a time budget and a size cap. Errors say whether
 * a retry can help.
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
}

/**
 * One FETCH_ALLOWED_HOSTS entry (parsed in lib/config.ts). `host` is normalised the way WHATWG
 * URL normalises a hostname, so comparing it with `URL.hostname` is exact.
 */
export interface HostRule {
  host: string;
  /** `*.example.com`: any subdomain of host, not host itself. */
  subdomains: boolean;
  /** Undefined: any port. */
  port?: number | undefined;
}

/** A failure a retry will not fix (bad URL, 4xx, oversize body): fail fast and record it. */
export class PermanentSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PermanentSourceError";
  }
}

/** A failure that may pass (network, 5xx, 429, timeout). */
export class TransientSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TransientSourceError";
  }
}

export interface SourceResponse {
  url: string;
  status: number;
  contentType: string;
  /** The body, decompressed, cut with an error once it passes maxBytes. */
  body: Readable;
}

const ALLOWED_PROTOCOLS = new Set(["http:", "https:"]);

export function checkSourceUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new PermanentSourceError("the URL is not a valid absolute URL");
  }
  if (!ALLOWED_PROTOCOLS.has(url.protocol)) {
    throw new PermanentSourceError(
      `the URL scheme ${url.protocol} is not allowed (http or https only)`,
    );
  }
  if (url.username || url.password) {
    throw new PermanentSourceError("the URL must not embed credentials");
  }
  return url;
}

const DEFAULT_PORTS: Record<string, number> = { "http:": 80, "https:": 443 };

/** Whether the URL's host (and port) is on the allow-list; an empty list allows any host. */
export function hostAllowed(url: URL, rules: readonly HostRule[] | undefined): boolean {
  if (!rules || rules.length === 0) return true;
  // "example.com." is the same DNS name as "example.com"; without this it would just be refused.
  const host = url.hostname.replace(/\.$/, "");
  const port = url.port ? Number(url.port) : DEFAULT_PORTS[url.protocol];
  return rules.some(
    (rule) =>
      (rule.port === undefined || rule.port === port) &&
      (rule.subdomains ? host.endsWith(`.${rule.host}`) : host === rule.host),
  );
}

function checkAllowedHost(url: URL, rules: readonly HostRule[] | undefined, hop: number): void {
  if (hostAllowed(url, rules)) return;
  const reason = `host "${url.host}" is not in FETCH_ALLOWED_HOSTS`;
  throw new PermanentSourceError(hop === 0 ? reason : `redirect refused: ${reason}`);
}

/** The URL without query string or credentials, safe for logs and error messages. */
export function describeUrl(raw: string): string {
  try {
    const url = new URL(raw);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return "(invalid URL)";
  }
}

export async function openSource(request: SourceRequest): Promise<SourceResponse> {
  const maxRedirects = request.maxRedirects ?? 5;
  const timeout = AbortSignal.timeout(request.timeoutMs);
  const signal = request.signal ? AbortSignal.any([timeout, request.signal]) : timeout;
  const origin = checkSourceUrl(request.url).origin;
  let url = checkSourceUrl(request.url);

  for (let hop = 0; ; hop++) {
    // Checked before every request, so a redirect cannot lead to a host off the list.
    checkAllowedHost(url, request.allowedHosts, hop);
    const headers: Record<string, string> = { accept: request.accept ?? "*/*" };
    // Credentials go only to the origin they were configured for, never to a redirect target.
    if (request.credentials && url.origin === origin) {
      const token = Buffer.from(`${request.credentials.username}:${request.credentials.password}`);
      headers.authorization = `Basic ${token.toString("base64")}`;
    }
    let response: Response;
    try {
      response = await fetch(url, { headers, redirect: "manual", signal });
    } catch (error) {
      throw fetchFailure(error, request, url);
    }

    if (response.status >= 300 && response.status < 400 && response.headers.has("location")) {
      await response.body?.cancel();
      if (hop >= maxRedirects) {
        throw new PermanentSourceError(`more than ${maxRedirects} redirects`);
      }
      const next = new URL(response.headers.get("location") ?? "", url);
      if (!ALLOWED_PROTOCOLS.has(next.protocol)) {
        throw new PermanentSourceError(`redirect to a ${next.protocol} URL refused`);
      }
      // fetch would refuse it anyway, quoting the whole URL, credentials included, in its error.
      if (next.username || next.password) {
        throw new PermanentSourceError("redirect to a URL with embedded credentials refused");
      }
      url = next;
      continue;
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw statusFailure(response.status, response.headers.get("retry-after"));
    }
    const declared = Number(response.headers.get("content-length") ?? Number.NaN);
    if (
      Number.isFinite(declared) &&
      declared > request.maxBytes &&
      !response.headers.has("content-encoding")
    ) {
      await response.body?.cancel();
      throw new PermanentSourceError(
        `the response is ${declared} bytes, over the limit of ${request.maxBytes}`,
      );
    }
    const body = response.body
      ? Readable.fromWeb(response.body as import("node:stream/web").ReadableStream<Uint8Array>)
      : Readable.from([]);
    const limited = body.pipe(new ByteLimit(request.maxBytes));
    body.on("error", (error) => limited.destroy(fetchFailure(error, request, url)));
    // Once the consumer is done (limit passed, body rejected, error), release the connection.
    limited.on("close", () => body.destroy());
    return {
      url: url.toString(),
      status: response.status,
      contentType: response.headers.get("content-type") ?? "",
      body: limited,
    };
  }
}

function statusFailure(status: number, retryAfter: string | null): Error {
  if (status === 401 || status === 403) {
    return new PermanentSourceError(`HTTP ${status}: the server refused the credentials`);
  }
  if (status === 408 || status === 429 || status >= 500) {
    const wait = retryAfter ? ` (retry-after ${retryAfter})` : "";
    return new TransientSourceError(`HTTP ${status}${wait}`);
  }
  return new PermanentSourceError(`HTTP ${status}`);
}

function fetchFailure(error: unknown, request: SourceRequest, url: URL): Error {
  if (error instanceof PermanentSourceError || error instanceof TransientSourceError) return error;
  const err = error as Error & { cause?: { code?: string; message?: string } };
  if (err.name === "TimeoutError") {
    return new TransientSourceError(`timed out after ${request.timeoutMs} ms`);
  }
  if (err.name === "AbortError") {
    return new TransientSourceError("the request was cancelled");
  }
  const cause = err.cause?.code ?? err.cause?.message ?? err.message;
  return new TransientSourceError(`request to ${url.host} failed: ${redactUrlCredentials(cause)}`);
}

/**
 * Hides the user:password@ part of every URL in a message. Library errors quote URLs whole, and
 * a message ends up in logs, the run table, the API and Temporal's history.
 */
export function redactUrlCredentials(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#]*@/gi, "$1***@");
}

/** Passes bytes through until the limit, then fails the stream: an endless body cannot fill memory. */
class ByteLimit extends Transform {
  private seen = 0;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) {
      callback(
        new PermanentSourceError(`the response is larger than the limit of ${this.limit} bytes`),
      );
      return;
    }
    callback(null, chunk);
  }
}
