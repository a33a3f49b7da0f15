import { boundText, PermanentSourceError } from "../domain/source-errors.ts";

/**
 * The URL rules of fetching a company's files, before any connection: http/https only, no
 * embedded credentials, no port of another protocol, only hosts on FETCH_ALLOWED_HOSTS (when
 * set); and how a URL may be shown (without query string or credentials). The connection-time
 * address checks live with the requests (adapters/http-source.ts).
 */

/**
 * One FETCH_ALLOWED_HOSTS entry (parsed in adapters/config/fetch-rules-env.ts). `host` is
 * normalised as WHATWG URL normalises a hostname: comparing it with `URL.hostname` is exact.
 */
export interface HostRule {
  host: string;
  /** `*.example.com`: any subdomain of host, not host itself. */
  subdomains: boolean;
  /** Undefined: any port. */
  port?: number | undefined;
}

export const ALLOWED_PROTOCOLS = new Set(["http:", "https:"]);

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
  checkPort(url);
  return url;
}

/**
 * Ports of other protocols (SMTP, IRC, X11, ...) that browsers and fetch refuse (WHATWG "bad
 * port" list): an HTTP request to them can be read as commands of that protocol.
 */
const REFUSED_PORTS = new Set([
  0, 1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102,
  103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465,
  512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993,
  995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668,
  6669, 6679, 6697, 10080,
]);

export function checkPort(url: URL): void {
  if (url.port !== "" && REFUSED_PORTS.has(Number(url.port))) {
    throw new PermanentSourceError(
      `port ${url.port} is refused: it belongs to another protocol (the WHATWG fetch "bad port" list)`,
    );
  }
}

export const DEFAULT_PORTS: Record<string, number> = { "http:": 80, "https:": 443 };

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

export function checkAllowedHost(
  url: URL,
  rules: readonly HostRule[] | undefined,
  hop: number,
): void {
  if (hostAllowed(url, rules)) return;
  const reason = `host "${url.host}" is not in FETCH_ALLOWED_HOSTS`;
  throw new PermanentSourceError(hop === 0 ? reason : `redirect refused: ${reason}`);
}

/** Longest URL quoted in a message (the reason around it is bounded again, to 500). */
const MAX_URL_CHARS = 200;

/** The URL without query string or credentials, safe for logs and error messages. */
export function describeUrl(raw: string): string {
  try {
    const url = new URL(raw);
    return boundText(`${url.protocol}//${url.host}${url.pathname}`, MAX_URL_CHARS);
  } catch {
    return "(invalid URL)";
  }
}

/** `host:port` of a URL, the key of the per-host limiter. */
export function originKey(url: URL): string {
  return `${url.hostname}:${url.port || DEFAULT_PORTS[url.protocol]}`;
}

/** The host is named in FETCH_ALLOWED_HOSTS (an empty list names nothing). */
export function namedException(url: URL, rules: readonly HostRule[] | undefined): boolean {
  return (rules?.length ?? 0) > 0 && hostAllowed(url, rules);
}

/**
 * Hides the user:password@ part of every URL in a message. Library errors quote URLs whole, and
 * a message ends up in logs, the run table, the API and Temporal's history.
 */
export function redactUrlCredentials(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#]*@/gi, "$1***@");
}
