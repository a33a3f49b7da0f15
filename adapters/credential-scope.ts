import type { BasicCredentials } from "./http-source.ts";

/**
 * Where a company's Basic auth credentials may go: the origin (scheme, host, port) of its
 * configured CSV URL, and the origins an operator listed for it (`Company.credentialOrigins`).
 * A transcript URL comes from the CSV's data, which the company's server (or whoever controls
 * it) writes: it cannot widen that set, or any row could send the password anywhere.
 */

export interface CredentialOwner {
  csvUrl: string;
  csvUsername: string | null;
  csvPassword: string | null;
  credentialOrigins?: readonly string[] | null | undefined;
}

function originOf(raw: string): string | undefined {
  try {
    const origin = new URL(raw).origin;
    // Opaque origins ("null": data:, file:, ...) never match anything.
    return origin === "null" ? undefined : origin;
  } catch {
    return undefined;
  }
}

/** The origins that may receive the company's credentials, normalised (default ports dropped). */
export function credentialOriginsOf(company: CredentialOwner): Set<string> {
  const origins = new Set<string>();
  for (const raw of [company.csvUrl, ...(company.credentialOrigins ?? [])]) {
    const origin = originOf(raw);
    if (origin) origins.add(origin);
  }
  return origins;
}

/** The credentials to send with a request to `url`, or undefined when that origin gets none. */
export function credentialsForUrl(
  url: string,
  company: CredentialOwner,
): BasicCredentials | undefined {
  if (!company.csvUsername || !company.csvPassword) return undefined;
  const origin = originOf(url);
  if (!origin || !credentialOriginsOf(company).has(origin)) return undefined;
  return { username: company.csvUsername, password: company.csvPassword };
}
