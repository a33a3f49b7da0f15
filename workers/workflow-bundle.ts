import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import type { WorkerOptions } from "@temporalio/worker";
import type { Logger } from "../adapters/logger.ts";
import { CODE_EXTENSION, CODE_ROOT, COMPILED, PROJECT_ROOT } from "../adapters/paths.ts";
import { sdkLogger } from "./sdk-logger.ts";

/**
 * Workflow code is bundled with webpack before a worker can run it. Doing that inside the worker
 * costs ~150 MB of resident memory that stays with the process for its whole life, so the bundle
 * is built once (at image build time, or by a short-lived child process on first start) and
 * workers load the finished file. A fingerprint of the sources says whether a file is current.
 */

// From the sources the bundle is built from workflows/*.ts into .build/; from the compiled build
// (dist/) from dist/workflows/*.js into dist/.build/, so neither overwrites the other's file.
export const WORKFLOWS_PATH = join(CODE_ROOT, "workflows", `index${CODE_EXTENSION}`);
export const WORKFLOW_BUNDLE_FILE = join(CODE_ROOT, ".build", "workflow-bundle.js");
const MANIFEST_FILE = `${WORKFLOW_BUNDLE_FILE}.json`;
const BUILD_SCRIPT = join(CODE_ROOT, "scripts", `build-workflows${CODE_EXTENSION}`);
/**
 * Workflow interceptors of @temporalio/interceptors-opentelemetry, always in the bundle: a
 * prebuilt bundle cannot follow a process's OTEL_EXPORTER_OTLP_ENDPOINT, so with tracing off the
 * worker's sink drops their spans (adapters/tracing.ts).
 */
const require = createRequire(import.meta.url);
export const WORKFLOW_INTERCEPTOR_MODULES = [
  require.resolve("@temporalio/interceptors-opentelemetry/lib/workflow-interceptors"),
];
// Workflow code imports from these (types included); any change in them may change the bundle.
const SOURCE_DIRS = ["workflows", "domain", "activities"];

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith(CODE_EXTENSION))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** sha256 over the workflow sources, the installed SDK and interceptor versions. */
export async function sourceFingerprint(): Promise<string> {
  const hash = createHash("sha256");
  for (const pkg of ["workflow", "interceptors-opentelemetry"]) {
    const { version } = JSON.parse(
      await readFile(
        join(PROJECT_ROOT, "node_modules", "@temporalio", pkg, "package.json"),
        "utf8",
      ),
    ) as { version: string };
    hash.update(`@temporalio/${pkg}@${version}\n`);
  }
  for (const module of WORKFLOW_INTERCEPTOR_MODULES) {
    hash.update(`interceptor ${relative(PROJECT_ROOT, module)}\n`);
  }
  for (const dir of SOURCE_DIRS) {
    for (const file of await sourceFiles(join(CODE_ROOT, dir))) {
      hash.update(`${relative(CODE_ROOT, file)}\n`);
      hash.update(await readFile(file));
    }
  }
  return hash.digest("hex");
}

/** Bundles the workflow code in this process (webpack; the memory stays with the process). */
export async function bundleWorkflows(log: Logger): Promise<{ code: string }> {
  const { bundleWorkflowCode } = await import("@temporalio/worker");
  // webpack's build report arrives at INFO; keep it out of the service log.
  const logger = {
    ...sdkLogger(log.child({ component: "workflow-bundler" })),
    info: () => undefined,
  };
  return bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
    logger,
  });
}

/** Builds the bundle file and its manifest; written to temporary names then renamed, so
 * concurrent builders and readers never see half a file. */
export async function writeWorkflowBundle(log: Logger): Promise<string> {
  const fingerprint = await sourceFingerprint();
  const { code } = await bundleWorkflows(log);
  await mkdir(dirname(WORKFLOW_BUNDLE_FILE), { recursive: true });
  const suffix = `.${process.pid}.tmp`;
  await writeFile(`${WORKFLOW_BUNDLE_FILE}${suffix}`, code);
  await rename(`${WORKFLOW_BUNDLE_FILE}${suffix}`, WORKFLOW_BUNDLE_FILE);
  await writeFile(`${MANIFEST_FILE}${suffix}`, JSON.stringify({ fingerprint }));
  await rename(`${MANIFEST_FILE}${suffix}`, MANIFEST_FILE);
  return WORKFLOW_BUNDLE_FILE;
}

async function bundleIsCurrent(): Promise<boolean> {
  try {
    const manifest = JSON.parse(await readFile(MANIFEST_FILE, "utf8")) as { fingerprint?: string };
    return manifest.fingerprint === (await sourceFingerprint());
  } catch {
    return false;
  }
}

/**
 * The bundle file, built in this process first when it is missing or out of date: for a
 * short-lived process that hands the file on (the test runs' setup, whose workers and spawned
 * worker processes then load it instead of each bundling again).
 */
export async function ensureWorkflowBundleFile(log: Logger): Promise<string> {
  if (await bundleIsCurrent()) return WORKFLOW_BUNDLE_FILE;
  return writeWorkflowBundle(log);
}

function runBuilder(log: Logger): Promise<boolean> {
  return new Promise((resolve) => {
    // The compiled builder is plain JavaScript; the sources' builder needs tsx.
    const args = COMPILED ? [BUILD_SCRIPT] : ["--import", "tsx", BUILD_SCRIPT];
    const child = spawn(process.execPath, args, {
      cwd: PROJECT_ROOT,
      env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? "warn" },
      stdio: ["ignore", "inherit", "inherit"],
    });
    child.once("error", (error) => {
      log.warn({ err: error }, "workflow bundle builder did not start");
      resolve(false);
    });
    child.once("exit", (code) => resolve(code === 0));
  });
}

/**
 * The workflow bundle for this process's workers: the prebuilt file when it matches the
 * sources, else one built now by a child process; in-process bundling only as the last resort
 * (e.g. a read-only filesystem whose image was built without `npm run build:workflows`).
 */
export async function loadWorkflowBundle(log: Logger): Promise<WorkerOptions["workflowBundle"]> {
  if (await bundleIsCurrent()) return { codePath: WORKFLOW_BUNDLE_FILE };
  const started = Date.now();
  log.info("workflow bundle missing or out of date; building it in a child process");
  if ((await runBuilder(log)) && (await bundleIsCurrent())) {
    log.info({ ms: Date.now() - started }, "workflow bundle built");
    return { codePath: WORKFLOW_BUNDLE_FILE };
  }
  log.warn("could not write the workflow bundle file; bundling inside this process");
  return bundleWorkflows(log);
}
