import { readFileSync } from "node:fs";
import { NativeConnection } from "@temporalio/worker";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type ConfigError, loadConfig } from "../adapters/config.ts";
import { connectTemporalClient, temporalConnectionOptions } from "../adapters/temporal.ts";
import { createTestPki, startMtlsProxy, type TestPki } from "./support/tls-proxy.ts";

const SERVER_NAME = "temporal.livedash.test";

/**
 * A production Temporal speaks TLS and asks for a client certificate (mTLS). The dev server has
 * no TLS, so a TLS-terminating proxy stands in front of it; the workers' NativeConnection and
 * the API's and scripts' Connection reach it through the TEMPORAL_TLS_* settings alone.
 */
describe("Temporal over mTLS", () => {
  let pki: TestPki;
  let proxy: Awaited<ReturnType<typeof startMtlsProxy>>;

  beforeAll(async () => {
    pki = createTestPki(SERVER_NAME);
    const [host, port] = inject("temporalAddress").split(":");
    proxy = await startMtlsProxy(pki, { host: host ?? "127.0.0.1", port: Number(port) });
  });

  afterAll(async () => {
    await proxy?.close();
    pki?.remove();
  });

  const env = (extra: Record<string, string>) => ({
    TEMPORAL_ADDRESS: `127.0.0.1:${proxy.port}`,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert,
    TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
    ...extra,
  });

  it("the API's client and a worker's connection reach Temporal with a client certificate (paths or inline PEM)", async () => {
    const config = loadConfig(
      env({
        TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert,
        TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey,
      }),
    );
    const { client, connection } = await connectTemporalClient(config);
    try {
      const info = await client.workflowService.getSystemInfo({});
      expect(info.serverVersion).toBeTruthy();
    } finally {
      await connection.close();
    }

    const inline = loadConfig(
      env({
        TEMPORAL_TLS_CLIENT_CERT_DATA: readFileSync(pki.clientCert, "utf8"),
        TEMPORAL_TLS_CLIENT_KEY_DATA: readFileSync(pki.clientKey, "utf8"),
      }),
    );
    const native = await NativeConnection.connect(temporalConnectionOptions(inline));
    try {
      const info = await native.workflowService.getSystemInfo({});
      expect(info.serverVersion).toBeTruthy();
    } finally {
      await native.close();
    }
    expect(proxy.accepted()).toBeGreaterThanOrEqual(2);
  });

  it("refuses a client without a certificate", async () => {
    const config = loadConfig(env({}));
    const { client, connection } = await connectTemporalClient(config);
    try {
      await expect(
        client.withDeadline(Date.now() + 5_000, () => client.workflowService.getSystemInfo({})),
      ).rejects.toThrow();
    } finally {
      await connection.close().catch(() => undefined);
    }
  });

  it("validates the settings: a certificate needs its key, one source each, files must exist", () => {
    const problems = (values: Record<string, string>) => {
      try {
        loadConfig(values);
        return [];
      } catch (error) {
        return (error as ConfigError).problems;
      }
    };
    expect(problems({ TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert })).toEqual([
      "TEMPORAL_TLS_CLIENT_KEY_PATH: a client certificate needs its key and a key its certificate (TEMPORAL_TLS_CLIENT_CERT_* and TEMPORAL_TLS_CLIENT_KEY_*)",
    ]);
    expect(problems({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: "/no/such/ca.pem" })).toEqual([
      'TEMPORAL_TLS_SERVER_CA_CERT_PATH: no such file "/no/such/ca.pem"',
    ]);
    expect(problems({ TEMPORAL_TLS_CLIENT_KEY_DATA: "not a key" })[0]).toBe(
      "TEMPORAL_TLS_CLIENT_KEY_DATA: expected PEM text (-----BEGIN ...)",
    );
    // Temporal Cloud with an API key: TLS on, the key sent with every call.
    const cloud = temporalConnectionOptions(
      loadConfig({
        TEMPORAL_ADDRESS: "us-east-1.aws.api.temporal.io:7233",
        TEMPORAL_NAMESPACE: "livedash.a1b2c",
        TEMPORAL_API_KEY: "test-api-key",
      }),
    );
    expect(cloud).toMatchObject({
      address: "us-east-1.aws.api.temporal.io:7233",
      apiKey: "test-api-key",
    });
    expect(cloud.tls).toBeTruthy();
  });
});
