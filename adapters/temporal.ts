import { Client, Connection } from "@temporalio/client";
import { toClientOptions } from "@temporalio/envconfig";
import type { Config } from "./config.ts";

export const DEFAULT_TEMPORAL_ADDRESS = "127.0.0.1:7233";

export function temporalAddress(config: Config): string {
  return config.temporal.address ?? DEFAULT_TEMPORAL_ADDRESS;
}

/**
 * Address, TLS (mTLS client certificate, server CA, server name) and API key for every
 * connection the platform opens: workers (NativeConnection), the API and scripts (Connection).
 * The settings are the TEMPORAL_* variables of Temporal's own environment configuration, read and
 * validated by adapters/config/temporal-env.ts; @temporalio/envconfig turns them into connection
 * options.
 */
export function temporalConnectionOptions(config: Config) {
  const tls = config.temporal.tls;
  const source = (path: string | undefined, data: string | undefined) =>
    path !== undefined ? { path } : data !== undefined ? { data } : undefined;
  const { connectionOptions } = toClientOptions({
    address: temporalAddress(config),
    namespace: config.temporal.namespace,
    ...(config.temporal.apiKey ? { apiKey: config.temporal.apiKey } : {}),
    ...(tls
      ? {
          tls: {
            ...(tls.serverName ? { serverName: tls.serverName } : {}),
            ...optional("clientCert", source(tls.clientCertPath, tls.clientCertData)),
            ...optional("clientKey", source(tls.clientKeyPath, tls.clientKeyData)),
            ...optional("serverCACert", source(tls.serverCaCertPath, tls.serverCaCertData)),
          },
        }
      : {}),
  });
  // An API key without explicit TLS settings still needs TLS (Temporal Cloud): envconfig
  // leaves tls undefined there, the SDK then turns it on for API keys.
  return connectionOptions;
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

export interface TemporalClient {
  client: Client;
  connection: Connection;
}

/**
 * A client whose connection is opened on first use: a process starts (and reports Temporal as
 * unreachable) while Temporal is down, and recovers once it is back.
 */
export async function connectTemporalClient(config: Config): Promise<TemporalClient> {
  const connection = Connection.lazy(temporalConnectionOptions(config));
  // Connect now when Temporal answers (so the first health check is not also the first
  // connection); when it does not, carry on and let calls report it.
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    connection.ensureConnected().catch(() => undefined),
    new Promise((resolve) => {
      timer = setTimeout(resolve, CONNECT_WAIT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
  const client = new Client({ connection, namespace: config.temporal.namespace });
  return { client, connection };
}

/** How long a process waits for Temporal at startup before carrying on without it. */
const CONNECT_WAIT_MS = 5_000;
