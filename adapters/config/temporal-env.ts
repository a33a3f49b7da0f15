/**
 * The Temporal connection's variables: address, namespace, UI link, API key and TLS (the
 * TEMPORAL_* names of Temporal's own environment configuration), with the checks that only make
 * sense across them (a certificate needs its key; a file or inline PEM, not both). One area of
 * the configuration schema (schema.ts joins them).
 */
import { z } from "zod";
import { filePath, optionalBool, optionalText, optionalUrl, pemData } from "./env-values.ts";

const temporalAddress = optionalText.superRefine((value, ctx) => {
  if (value !== undefined && !/^[^\s/:]+:\d{1,5}$/.test(value)) {
    ctx.addIssue({ code: "custom", message: `expected host:port, got "${value}"` });
  }
});

export const temporalEnv = z.object({
  TEMPORAL_ADDRESS: temporalAddress,
  TEMPORAL_NAMESPACE: optionalText.transform((namespace) => namespace ?? "default"),
  TEMPORAL_UI_URL: optionalUrl(["http:", "https:"]).transform(
    (url) => url ?? "http://localhost:8233",
  ),
  TEMPORAL_API_KEY: optionalText,
  /** Unset: TLS follows the other settings; false turns it off whatever they say. */
  TEMPORAL_TLS: optionalBool,
  TEMPORAL_TLS_CLIENT_CERT_PATH: filePath,
  TEMPORAL_TLS_CLIENT_CERT_DATA: pemData,
  TEMPORAL_TLS_CLIENT_KEY_PATH: filePath,
  TEMPORAL_TLS_CLIENT_KEY_DATA: pemData,
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: filePath,
  TEMPORAL_TLS_SERVER_CA_CERT_DATA: pemData,
  TEMPORAL_TLS_SERVER_NAME: optionalText,
});
type TemporalEnv = z.output<typeof temporalEnv>;

/**
 * Settings only valid together (TLS certificate and key, one source of each), each reported
 * against the variable to change (schema.ts runs them once every variable parsed on its own).
 */
export function temporalTlsProblems(e: TemporalEnv, ctx: z.RefinementCtx): void {
  for (const [what, path, data] of [
    ["CLIENT_CERT", e.TEMPORAL_TLS_CLIENT_CERT_PATH, e.TEMPORAL_TLS_CLIENT_CERT_DATA],
    ["CLIENT_KEY", e.TEMPORAL_TLS_CLIENT_KEY_PATH, e.TEMPORAL_TLS_CLIENT_KEY_DATA],
    ["SERVER_CA_CERT", e.TEMPORAL_TLS_SERVER_CA_CERT_PATH, e.TEMPORAL_TLS_SERVER_CA_CERT_DATA],
  ] as const) {
    if (path !== undefined && data !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: [`TEMPORAL_TLS_${what}_PATH`],
        message: `set either TEMPORAL_TLS_${what}_PATH or TEMPORAL_TLS_${what}_DATA, not both`,
      });
    }
  }
  const cert = e.TEMPORAL_TLS_CLIENT_CERT_PATH ?? e.TEMPORAL_TLS_CLIENT_CERT_DATA;
  const key = e.TEMPORAL_TLS_CLIENT_KEY_PATH ?? e.TEMPORAL_TLS_CLIENT_KEY_DATA;
  if ((cert === undefined) !== (key === undefined)) {
    ctx.addIssue({
      code: "custom",
      path: ["TEMPORAL_TLS_CLIENT_KEY_PATH"],
      message:
        "a client certificate needs its key and a key its certificate (TEMPORAL_TLS_CLIENT_CERT_* and TEMPORAL_TLS_CLIENT_KEY_*)",
    });
  }
}

/** TLS is on when asked for, when any TLS file or name is given, or with an API key. */
function temporalTls(e: TemporalEnv) {
  const settings = {
    clientCertPath: e.TEMPORAL_TLS_CLIENT_CERT_PATH,
    clientCertData: e.TEMPORAL_TLS_CLIENT_CERT_DATA,
    clientKeyPath: e.TEMPORAL_TLS_CLIENT_KEY_PATH,
    clientKeyData: e.TEMPORAL_TLS_CLIENT_KEY_DATA,
    serverCaCertPath: e.TEMPORAL_TLS_SERVER_CA_CERT_PATH,
    serverCaCertData: e.TEMPORAL_TLS_SERVER_CA_CERT_DATA,
    serverName: e.TEMPORAL_TLS_SERVER_NAME,
  };
  if (e.TEMPORAL_TLS === false) return undefined;
  const anySet = Object.values(settings).some((v) => v !== undefined);
  // Each setting optional in the type, as @temporalio/envconfig's TLS options are.
  const tls: Partial<typeof settings> = settings;
  return e.TEMPORAL_TLS || anySet || e.TEMPORAL_API_KEY !== undefined ? tls : undefined;
}

/** The `temporal` part of Config. */
export function temporalSection(e: TemporalEnv) {
  return {
    temporal: {
      /** Undefined when not configured: dev tooling then starts a local dev server. */
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      uiUrl: e.TEMPORAL_UI_URL,
      /** Temporal Cloud API key (sent as a bearer token; implies TLS). */
      apiKey: e.TEMPORAL_API_KEY,
      /** TEMPORAL_TLS_* as @temporalio/envconfig reads them; undefined: plain TCP. */
      tls: temporalTls(e),
    },
  };
}
