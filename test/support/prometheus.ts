import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "../../scripts/services/ports.ts";

const run = promisify(execFile);

/** Debian's prometheus package ships both binaries (apt-get install prometheus; see .ci/run). */
export const PROMTOOL = process.env.PROMTOOL_PATH ?? "promtool";
export const PROMETHEUS = process.env.PROMETHEUS_PATH ?? "prometheus";

/** Runs promtool; resolves with its output, rejects with it (and the exit code) on failure. */
export async function promtool(args: string[], cwd?: string): Promise<string> {
  try {
    const { stdout, stderr } = await run(PROMTOOL, args, { cwd, timeout: 60_000 });
    return stdout + stderr;
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (e.code === "ENOENT") {
      throw new Error(
        `${PROMTOOL} not found: install Debian's prometheus package (apt-get install -y prometheus)`,
      );
    }
    throw new Error(`promtool ${args.join(" ")} failed:\n${e.stdout ?? ""}${e.stderr ?? ""}`);
  }
}

export interface RunningPrometheus {
  url: string;
  query<T = unknown>(expr: string): Promise<{ resultType: string; result: T[] }>;
  close(): Promise<void>;
  output(): string;
}

/**
 * A real Prometheus server on a free loopback port, storage in a temporary folder, scraping the
 * given targets every 2 s and evaluating the rule files every second.
 */
export async function startPrometheus(options: {
  jobs: { name: string; targets: string[] }[];
  ruleFiles?: string[];
}): Promise<RunningPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), "livedash-prometheus-"));
  const port = await freePort();
  const config = {
    // A scrape may take over a second on a loaded 2-core machine: a timed-out scrape would mark
    // every series of the target stale.
    global: { scrape_interval: "2s", scrape_timeout: "1900ms", evaluation_interval: "1s" },
    rule_files: options.ruleFiles ?? [],
    scrape_configs: options.jobs.map((job) => ({
      job_name: job.name,
      static_configs: [{ targets: job.targets }],
    })),
  };
  await writeFile(join(dir, "prometheus.yml"), JSON.stringify(config));
  const child: ChildProcess = spawn(
    PROMETHEUS,
    [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.once("error", (error) => {
    output += String(error);
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ready = await fetch(`${url}/-/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
      throw new Error(`Prometheus did not start:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    url,
    output: () => output,
    query: async <T>(expr: string) => {
      const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
      const body = (await response.json()) as {
        status: string;
        error?: string;
        data: { resultType: string; result: T[] };
      };
      if (body.status !== "success") throw new Error(`query ${expr} failed: ${body.error}`);
      return body.data;
    },
    close: async () => {
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    },
  };
}
