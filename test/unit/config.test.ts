import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { ConfigError, ENV_VARS, loadConfig } from "../../adapters/config.ts";

const run = promisify(execFile);

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe("configuration", () => {
  it("has the documented defaults", () => {
    const config = loadConfig({});
    expect(config.scheduler).toMatchObject({
      enabled: true,
      autoRestart: true,
      timeZone: "UTC",
      maxConcurrentActivities: 20,
      // Runs drain: 200 activities in flight, continue-as-new near 9,000 events, deadline from
      // the interval, stages ERROR past an hour of lag.
      runWindow: 200,
      runHistoryBudget: 9_000,
      runDeadlineMs: 0,
      backlogLagObjectiveMs: 3_600_000,
    });
    expect(config).toMatchObject({ fetchMaxPerHost: 4, fetchHostWaitMs: 10_000 });
    expect(config.csvImport).toMatchObject({
      interval: "*/10 * * * *",
      batchSize: 10,
      maxConcurrent: 5,
      timeoutMs: 300_000,
      retryIntervalMs: 5_000,
    });
    expect(config.importProcessing).toEqual({
      interval: "*/2 * * * *",
      timeoutMs: 120_000,
      batchSize: 50,
      maxConcurrent: 20,
      retryIntervalMs: 2_000,
      timeZone: "UTC",
      transcriptTimeoutMs: 30_000,
      transcriptMaxBytes: 5 * 1024 * 1024,
      transcriptMaxMessages: 5_000,
      maxAttempts: 10,
    });
    expect(config.sessionProcessing).toEqual({ interval: "*/5 * * * *", batchSize: 50 });
    expect(config.batchProcessing).toEqual({
      interval: "*/5 * * * *",
      checkInterval: "*/2 * * * *",
      minRequests: 10,
      maxWaitMs: 1_800_000,
      maxRequests: 1000,
    });
    expect(config.analysis).toEqual({
      mode: "batch",
      maxConcurrent: 20,
      requestsPerSecond: 0,
      retryIntervalMs: 2_000,
      maxRetries: 3,
      fallbackModel: "gpt-4o-mini",
      usdToEur: 0.85,
    });
    expect(config.temporal).toMatchObject({ address: undefined, namespace: "default" });
    expect(config.port).toBe(3000);
    expect(config.region).toBeUndefined();
    expect(config.companiesFilter).toBeUndefined();
  });

  it("reads every documented variable", () => {
    const config = loadConfig({
      SCHEDULER_ENABLED: "false",
      SCHEDULER_AUTO_RESTART: "no",
      SCHEDULER_INSTANCE_ID: "worker-a",
      CSV_IMPORT_INTERVAL: "*/3 * * * *",
      CSV_IMPORT_BATCH_SIZE: "25",
      CSV_IMPORT_MAX_CONCURRENT: "2",
      CSV_IMPORT_TIMEOUT: "60000",
      IMPORT_PROCESSING_INTERVAL: "0 * * * *",
      IMPORT_PROCESSING_TIMEOUT: "5000",
      SESSION_PROCESSING_INTERVAL: "15 3 * * 1-5",
      SESSION_PROCESSING_BATCH_SIZE: "7",
      BATCH_PROCESSING_INTERVAL: "*/7 * * * *",
      BATCH_PROCESSING_CHECK_INTERVAL: "*/1 * * * *",
      REGION: "us",
      CSV_COMPANIES_FILTER: "region:us",
      TEMPORAL_ADDRESS: "temporal.internal:7233",
      TEMPORAL_NAMESPACE: "livedash",
      DATABASE_URL: "postgresql://app:secret@db:5432/livedash",
      OPENAI_API_KEY: "sk-test",
      OPENAI_BASE_URL: "http://127.0.0.1:4010/v1",
      PORT: "8080",
    });
    expect(config.scheduler).toMatchObject({
      enabled: false,
      autoRestart: false,
      instanceId: "worker-a",
    });
    expect(config.csvImport).toMatchObject({
      interval: "*/3 * * * *",
      batchSize: 25,
      maxConcurrent: 2,
      timeoutMs: 60_000,
    });
    expect(config.importProcessing).toMatchObject({ interval: "0 * * * *", timeoutMs: 5000 });
    expect(config.sessionProcessing).toEqual({ interval: "15 3 * * 1-5", batchSize: 7 });
    expect(config.batchProcessing).toMatchObject({
      interval: "*/7 * * * *",
      checkInterval: "*/1 * * * *",
    });
    expect(config.region).toBe("us");
    expect(config.companiesFilter).toEqual({ region: "us" });
    expect(config.temporal).toMatchObject({
      address: "temporal.internal:7233",
      namespace: "livedash",
    });
    expect(config.databaseUrl).toBe("postgresql://app:secret@db:5432/livedash");
    expect(config.openai).toEqual({ apiKey: "sk-test", baseUrl: "http://127.0.0.1:4010/v1" });
    expect(config.port).toBe(8080);
  });

  it("names each bad variable and what was expected", () => {
    expect(
      problems({
        CSV_IMPORT_BATCH_SIZE: "ten",
        CSV_IMPORT_MAX_CONCURRENT: "0",
        SCHEDULER_ENABLED: "maybe",
        CSV_IMPORT_INTERVAL: "every ten minutes",
        IMPORT_PROCESSING_INTERVAL: "61 * * * *",
        CSV_COMPANIES_FILTER: "country:us",
        PORT: "70000",
        TEMPORAL_ADDRESS: "http://localhost:7233",
        DATABASE_URL: "mysql://root:hunter2@db/x",
      }),
    ).toEqual([
      'SCHEDULER_ENABLED: expected true or false, got "maybe"',
      'CSV_IMPORT_INTERVAL: expected a cron expression with 5 fields (minute hour day month weekday), got "every ten minutes"',
      'CSV_IMPORT_BATCH_SIZE: expected an integer from 1 to 1000, got "ten"',
      'CSV_IMPORT_MAX_CONCURRENT: expected an integer from 1 to 100, got "0"',
      expect.stringMatching(
        /^IMPORT_PROCESSING_INTERVAL: expected a valid cron expression \(.+\), got "61 \* \* \* \*"$/,
      ),
      'CSV_COMPANIES_FILTER: expected "region:<name>", got "country:us"',
      'TEMPORAL_ADDRESS: expected host:port, got "http://localhost:7233"',
      // The password of a rejected URL is not echoed back.
      'DATABASE_URL: expected a postgres: or postgresql: URL, got "mysql://root:***@db/x"',
      'PORT: expected an integer from 0 to 65535, got "70000"',
    ]);
  });

  it("TRANSCRIPT_MAX_MESSAGES and IMPORT_MAX_ATTEMPTS: positive whole numbers, named when not", () => {
    expect(problems({ TRANSCRIPT_MAX_MESSAGES: "0", IMPORT_MAX_ATTEMPTS: "lots" })).toEqual([
      'TRANSCRIPT_MAX_MESSAGES: expected an integer from 1 to 10000000, got "0"',
      'IMPORT_MAX_ATTEMPTS: expected an integer from 1 to 1000, got "lots"',
    ]);
    const config = loadConfig({ TRANSCRIPT_MAX_MESSAGES: "200000", IMPORT_MAX_ATTEMPTS: "2" });
    expect(config.importProcessing).toMatchObject({
      transcriptMaxMessages: 200_000,
      maxAttempts: 2,
    });
  });

  it("FETCH_ALLOWED_HOSTS: host, host:port and *.domain entries; a malformed one is named", () => {
    expect(loadConfig({}).fetchAllowedHosts).toEqual([]);
    expect(loadConfig({ FETCH_ALLOWED_HOSTS: " " }).fetchAllowedHosts).toEqual([]);
    expect(
      loadConfig({
        FETCH_ALLOWED_HOSTS: "Exports.Example.com, *.cdn.example.com:8443,127.0.0.1:3101,[::1],",
      }).fetchAllowedHosts,
    ).toEqual([
      { host: "exports.example.com", subdomains: false, port: undefined },
      { host: "cdn.example.com", subdomains: true, port: 8443 },
      { host: "127.0.0.1", subdomains: false, port: 3101 },
      { host: "[::1]", subdomains: false, port: undefined },
    ]);
    const expected =
      "FETCH_ALLOWED_HOSTS: expected comma-separated host names (example.com, example.com:8443 or *.example.com), got";
    expect(problems({ FETCH_ALLOWED_HOSTS: "ok.example.com,https://evil.test/x" })).toEqual([
      `${expected} "https://evil.test/x"`,
    ]);
    expect(problems({ FETCH_ALLOWED_HOSTS: "*,a.com:0,*.10.0.0.1,user@a.com" })).toEqual([
      `${expected} "*", "a.com:0", "*.10.0.0.1", "user@a.com"`,
    ]);
    // A value naming no host is an error, not "any host".
    expect(problems({ FETCH_ALLOWED_HOSTS: " , " })).toEqual([`${expected} ","`]);
  });

  it("FETCH_ALLOW_PRIVATE_NETWORKS: off by default, true, or address ranges; FETCH_MIN_BYTES_PER_SECOND", () => {
    expect(loadConfig({}).fetchAllowPrivateNetworks).toBe(false);
    expect(loadConfig({}).fetchMinBytesPerSecond).toBe(1024);
    expect(loadConfig({ FETCH_ALLOW_PRIVATE_NETWORKS: "true" }).fetchAllowPrivateNetworks).toBe(
      true,
    );
    expect(
      loadConfig({ FETCH_ALLOW_PRIVATE_NETWORKS: "10.1.0.0/16, 127.0.0.1,fd00::/8" })
        .fetchAllowPrivateNetworks,
    ).toEqual([
      { address: "10.1.0.0", prefix: 16 },
      { address: "127.0.0.1", prefix: 32 },
      { address: "fd00::", prefix: 8 },
    ]);
    expect(loadConfig({ FETCH_MIN_BYTES_PER_SECOND: "0" }).fetchMinBytesPerSecond).toBe(0);
    expect(problems({ FETCH_ALLOW_PRIVATE_NETWORKS: "10.0.0.0/8,intranet,10.0.0.0/40" })).toEqual([
      'FETCH_ALLOW_PRIVATE_NETWORKS: expected true, false or comma-separated address ranges (10.1.0.0/16, ::1), got "intranet", "10.0.0.0/40"',
    ]);
    expect(problems({ FETCH_MIN_BYTES_PER_SECOND: "-1" })).toEqual([
      'FETCH_MIN_BYTES_PER_SECOND: expected an integer from 0 to 1073741824, got "-1"',
    ]);
  });

  it("a worker started with a bad variable stops at once with a message naming it", async () => {
    const failure = await run("npx", ["tsx", "workers/main.ts", "--scheduler=csv-import"], {
      env: {
        ...process.env,
        CSV_IMPORT_TIMEOUT: "soon",
        DATABASE_URL: "postgresql://localhost/none",
      },
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toContain(
      'CSV_IMPORT_TIMEOUT: expected an integer from 1000 to 86400000, got "soon"',
    );
    expect(failure?.stderr).not.toContain("    at ");
  });

  it("a worker without DATABASE_URL says it needs one", async () => {
    const env = { ...process.env };
    delete env.DATABASE_URL;
    const failure = await run("npx", ["tsx", "workers/main.ts"], { env }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toContain("DATABASE_URL: required for this process");
  });

  it("docs/configuration.md and .env.example document every variable the configuration reads", () => {
    const readme = readFileSync("docs/configuration.md", "utf8");
    const example = readFileSync(".env.example", "utf8");
    for (const name of ENV_VARS) {
      expect(readme, `docs/configuration.md documents ${name}`).toContain(`\`${name}\``);
      expect(example, `.env.example lists ${name}`).toMatch(new RegExp(`^${name}=`, "m"));
    }
  });
});
