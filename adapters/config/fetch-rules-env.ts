/**
 * The two variables that decide where CSV and transcript fetches may go: FETCH_ALLOWED_HOSTS
 * (host rules) and FETCH_ALLOW_PRIVATE_NETWORKS (internal address ranges). Kept apart from
 * sources-env.ts because their list syntax and checks are the security boundary of fetching.
 */
import { z } from "zod";
import { type NetworkRange, parseNetworkRange } from "../../domain/address-policy.ts";
import type { HostRule } from "../source-url.ts";
import { flagWord, optionalText } from "./env-values.ts";

const HOST_ENTRY = /^(\*\.)?([a-z0-9_-]+(?:\.[a-z0-9_-]+)*|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/;

/**
 * FETCH_ALLOWED_HOSTS: `host`, `host:port` or `*.domain[:port]`, comma-separated. Unset or empty
 * allows any host; a value that names no host at all (",") is an error, not "any".
 */
export const allowedHosts = optionalText.transform((value, ctx) => {
  if (value === undefined) return [];
  const entries = value
    .split(",")
    .map((entry) => entry.trim().toLowerCase())
    .filter(Boolean);
  const rules: HostRule[] = [];
  const bad: string[] = [];
  for (const entry of entries) {
    const rule = hostRule(entry);
    if (rule) rules.push(rule);
    else bad.push(`"${entry}"`);
  }
  if (bad.length > 0 || rules.length === 0) {
    ctx.addIssue({
      code: "custom",
      message: `expected comma-separated host names (example.com, example.com:8443 or *.example.com), got ${bad.length > 0 ? bad.join(", ") : `"${value}"`}`,
    });
    return z.NEVER;
  }
  return rules;
});

function hostRule(entry: string): HostRule | undefined {
  const match = HOST_ENTRY.exec(entry);
  const host = match?.[2];
  if (!match || !host) return undefined;
  const subdomains = match[1] !== undefined;
  // A wildcard over an IP address means nothing: refuse it rather than guess.
  if (subdomains && (host.startsWith("[") || /^[\d.]+$/.test(host))) return undefined;
  const port = match[3] === undefined ? undefined : Number(match[3]);
  if (port !== undefined && (port < 1 || port > 65_535)) return undefined;
  try {
    // Normalised as fetch will see it (IPv4 forms, IPv6 compression), so matching is exact.
    return { host: new URL(`http://${host}`).hostname, subdomains, port };
  } catch {
    return undefined;
  }
}

/**
 * FETCH_ALLOW_PRIVATE_NETWORKS: false (default), true (any internal address), or the internal
 * ranges fetches may reach, comma-separated (`10.1.0.0/16,127.0.0.1`).
 */
export const privateNetworks = optionalText.transform((value, ctx): boolean | NetworkRange[] => {
  if (value === undefined) return false;
  const word = flagWord.safeParse(value);
  if (word.success) return word.data;
  const entries = value
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean);
  const ranges = entries.map(parseNetworkRange);
  const bad = entries.filter((_, i) => ranges[i] === undefined);
  if (bad.length > 0 || entries.length === 0) {
    ctx.addIssue({
      code: "custom",
      message: `expected true, false or comma-separated address ranges (10.1.0.0/16, ::1), got ${bad.map((b) => `"${b}"`).join(", ") || `"${value}"`}`,
    });
    return z.NEVER;
  }
  return ranges as NetworkRange[];
});
