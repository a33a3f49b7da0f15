/**
 * The HTTP API's variables: its port, admin token, the regions it reports, and the alert webhook
 * it delivers scheduler ERROR messages to (with the public URL their links point at). One area
 * of the configuration schema (schema.ts joins them).
 */
import { z } from "zod";
import { bool, int, optionalText, optionalUrl, REGION_NAME } from "./env-values.ts";

const apiRegions = optionalText.transform((value, ctx) => {
  if (value === undefined) return undefined;
  const regions = value
    .split(",")
    .map((r) => r.trim())
    .filter(Boolean);
  const bad = regions.find((r) => !REGION_NAME.test(r));
  if (bad !== undefined || regions.length === 0) {
    ctx.addIssue({
      code: "custom",
      message: `expected a comma-separated list of regions, got "${value}"`,
    });
    return z.NEVER;
  }
  return [...new Set(regions)];
});

export const apiEnv = z.object({
  PORT: int(3000, 0, 65_535),
  ADMIN_API_TOKEN: optionalText.superRefine((value, ctx) => {
    if (value !== undefined && value.length < 16) {
      ctx.addIssue({ code: "custom", message: "expected at least 16 characters" });
    }
  }),
  ADMIN_API_INSECURE: bool(false),
  API_REGIONS: apiRegions,
  API_PUBLIC_URL: optionalUrl(["http:", "https:"]),
  ALERT_WEBHOOK_URL: optionalUrl(["http:", "https:"]),
  ALERT_EVALUATION_INTERVAL_MS: int(30_000, 200, 3_600_000),
  ALERT_WEBHOOK_MAX_ATTEMPTS: int(8, 1, 100),
});

/** The `port`, `admin`, `apiRegions` and `alerts` parts of Config. */
export function apiSection(e: z.output<typeof apiEnv>) {
  return {
    port: e.PORT,
    admin: {
      /** Bearer token of the admin routes; undefined only in insecure dev mode. */
      token: e.ADMIN_API_TOKEN,
      insecure: e.ADMIN_API_INSECURE,
    },
    /** Regions whose schedulers the API reports (default: its own REGION). */
    apiRegions: e.API_REGIONS,
    alerts: {
      /** Scheduler ERROR and recovery messages go here (unset: no notifications). */
      webhookUrl: e.ALERT_WEBHOOK_URL,
      /** How often the API evaluates scheduler states and retries pending deliveries. */
      evaluationIntervalMs: e.ALERT_EVALUATION_INTERVAL_MS,
      /** Deliveries of one message before it is given up (backoff doubles from the interval). */
      maxAttempts: e.ALERT_WEBHOOK_MAX_ATTEMPTS,
      /** Base of the links in messages: where operators reach this API and its dashboard. */
      publicUrl: (e.API_PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, ""),
    },
  };
}
