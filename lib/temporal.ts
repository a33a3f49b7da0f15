import { Client, Connection } from "@temporalio/client";
import type { Config } from "./config.ts";

export const DEFAULT_TEMPORAL_ADDRESS = "127.0.0.1:7233";

export function temporalAddress(config: Config): string {
  return config.temporal.address ?? DEFAULT_TEMPORAL_ADDRESS;
}

export interface TemporalClient {
  client: Client;
  connection: Connection;
}

export async function connectTemporalClient(config: Config): Promise<TemporalClient> {
  const connection = await Connection.connect({ address: temporalAddress(config) });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  return { client, connection };
}
