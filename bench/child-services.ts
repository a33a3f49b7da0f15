/**
 * Helper servers a bench runs in child processes (the CSV source, the OpenAI stand-in), so their
 * work does not compete with the bench's event loop.
 */

import { spawn } from "node:child_process";
import { join } from "node:path";
import { PROJECT_ROOT } from "../scripts/services/temporal.ts";

export interface CsvSource {
  /** The first host's URL. */
  url: string;
  /** Every host's URL (one unless started with more). */
  urls: readonly string[];
  /** URL of a company's CSV: `rows` generated rows whose session ids start with `prefix`. */
  urlFor(prefix: string, rows: number, options?: { transcripts?: boolean; host?: number }): string;
  /** Requests served so far and the most served at once, on any one host (the per-host limit's witness). */
  stats(): Promise<{ requests: number; maxActive: number }>;
  close(): Promise<void>;
}

/** A helper server in a child process: `node --import tsx <script> <args>`. */
export interface ChildService {
  /** What the child printed first (its URL, parsed by the caller). */
  url: string;
  close(): Promise<void>;
}

/**
 * Starts a script that prints its URL on its first stdout line and stops on stdin EOF or
 * SIGTERM. A child of its own, so its work does not compete with the bench's event loop.
 */
export async function startChildService(
  script: string,
  args: readonly string[],
  parseUrl: (firstLine: string) => string | undefined,
): Promise<ChildService> {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    cwd: PROJECT_ROOT,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${script} did not start in 30 s`)), 30_000);
    const onData = (data: Buffer) => {
      out += data.toString("utf8");
      if (!out.includes("\n")) return;
      // Later output is read and dropped, so the pipe never fills up.
      child.stdout?.off("data", onData);
      child.stdout?.resume();
      clearTimeout(timer);
      const parsed = parseUrl(out.split("\n")[0]?.trim() ?? "");
      if (parsed) resolve(parsed);
      else reject(new Error(`${script} printed no URL: ${out.slice(0, 200)}`));
    };
    child.stdout?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with code ${code}`));
    });
  }).catch(async (error: unknown) => {
    child.kill("SIGKILL");
    await exited;
    throw error;
  });
  return {
    url,
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin?.end();
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Loopback HTTP server streaming generated CSV (GET /csv/<prefix>/<rows>), in a child process,
 * on `hosts` ports: each port is a source host of its own.
 */
export async function startCsvSource(hosts = 1): Promise<CsvSource> {
  const service = await startChildService(
    join("bench", "csv-source.ts"),
    [String(hosts)],
    (line) => (line.startsWith("http://") ? line : undefined),
  );
  const urls = service.url.split(" ");
  const url = urls[0] as string;
  return {
    url,
    urls,
    urlFor: (prefix, rows, options) =>
      `${urls[(options?.host ?? 0) % urls.length]}/csv/${prefix}/${rows}${options?.transcripts ? "?transcripts" : ""}`,
    stats: async () =>
      (await (await fetch(`${url}/stats`)).json()) as {
        requests: number;
        maxActive: number;
      },
    close: service.close,
  };
}

/**
 * The OpenAI stand-in as operators run it (`openai-stand-in/main.ts`), in a child process on a
 * free port; returns its base URL (ending in /v1).
 */
export function startOpenAIStandInProcess(options: {
  latencyMs: number;
  /** validating, in_progress, finalizing durations of a batch. */
  batchMs?: readonly [number, number, number];
}): Promise<ChildService> {
  const args = ["--port", "0", "--latency-ms", String(options.latencyMs)];
  if (options.batchMs) args.push("--batch-ms", options.batchMs.join(","));
  return startChildService(
    join("openai-stand-in", "main.ts"),
    args,
    (line) => /(http:\/\/\S+\/v1)/.exec(line)?.[1],
  );
}
