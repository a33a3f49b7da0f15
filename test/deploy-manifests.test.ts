/**
 * Static checks of the deployment files: Dockerfile, .dockerignore, docker-compose.yml and the
 * Kubernetes manifests under deploy/k8s. No Docker engine or cluster is involved; the files are
 * parsed and checked against the code they deploy: the scheduler registry (WORKER_TYPES), the
 * configuration schema (ENV_VARS, loadConfig), package.json's scripts, the sources the entry
 * points import, and the probe routes of the real API app and worker health server.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { createApp } from "../api/app.ts";
import { ENV_VARS, loadConfig } from "../lib/config.ts";
import { taskQueueFor, WORKER_TYPES, type WorkerType } from "../lib/schedulers.ts";
import { startWorkerHealthServer } from "../workers/health-server.ts";
import { silentLog, startTestStack, type TestStack } from "./support/harness.ts";

type Env = Record<string, string>;

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const K8S_DIR = "deploy/k8s";

/** Routes of the API process (api/app.ts) that probes and the Prometheus annotation may name. */
const API_PROBE_ROUTES = ["/livez", "/readyz", "/metrics"];
/** Routes of the worker health server (workers/health-server.ts). */
const WORKER_PROBE_ROUTES = ["/livez", "/readyz"];

/** The platform's secrets: only ever in the Secret (k8s) or interpolated from .env (compose). */
const SECRET_VARS = ["DATABASE_URL", "OPENAI_API_KEY", "ADMIN_API_TOKEN", "ALERT_WEBHOOK_URL"];
/** Secrets the platform runs without: compose leaves them empty unless .env sets them. */
const OPTIONAL_SECRET_VARS = ["OPENAI_API_KEY", "ALERT_WEBHOOK_URL"];
/** What every value of the committed Secret template must contain. */
const PLACEHOLDER = "REPLACE_ME";

/**
 * Variables the LiveDash containers may set although lib/config.ts does not read them. Anything
 * else must be an ENV_VARS entry, so a typo (CSV_IMPORT_INTERVALL) or a renamed variable fails
 * here instead of being silently ignored by the process.
 * - NODE_ENV: Node libraries read it; the image sets it to production.
 */
/** Node's own variables the deployment files may set (NODE_OPTIONS: the workers' heap cap). */
const APP_ENV_EXTRAS = ["NODE_ENV", "NODE_OPTIONS"];
/** The Dockerfile's runtime stage may set Node's and npm's own variables. */
const IMAGE_ENV_NAME = /^(NODE_ENV|NPM_CONFIG_[A-Z_]+)$/;
/** Variables of the third-party images in docker-compose.yml, on those services only. */
const THIRD_PARTY_ENV: Record<string, string[]> = {
  postgres: ["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"],
  "temporalio/auto-setup": ["DB", "DB_PORT", "POSTGRES_SEEDS", "POSTGRES_USER", "POSTGRES_PWD"],
  "temporalio/ui": ["TEMPORAL_ADDRESS", "TEMPORAL_CORS_ORIGINS"],
  "prom/prometheus": [],
  "grafana/grafana": [
    "GF_SECURITY_ADMIN_PASSWORD",
    "GF_AUTH_ANONYMOUS_ENABLED",
    "GF_AUTH_ANONYMOUS_ORG_ROLE",
    "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH",
  ],
};
/** ENV_VARS entries no deployment file may set: admin routes without a token are for dev only. */
const FORBIDDEN_VARS = ["ADMIN_API_INSECURE"];

/** Values for docker compose's ${VAR:?...} interpolations, to read compose's environment. */
const COMPOSE_SAMPLE_ENV: Record<string, string> = {
  POSTGRES_PASSWORD: "compose-test-password",
  ADMIN_API_TOKEN: "compose-test-admin-token-0123456789",
  GRAFANA_ADMIN_PASSWORD: "compose-test-grafana-password",
};

/**
 * After SIGTERM a worker gives in-flight activities WORKER_SHUTDOWN_GRACE_MS, then closes its
 * Temporal connection and database pool: the orchestrator must wait at least this much longer.
 */
const SHUTDOWN_HEADROOM_S = 5;

// --- File loading ------------------------------------------------------------------------------

function readText(path: string): string {
  return readFileSync(join(ROOT, path), "utf8");
}

/** Every document of a YAML file as plain data, with `<<` merge keys resolved like compose. */
function parseYaml(path: string): unknown[] {
  const documents = parseAllDocuments(readText(path), { merge: true });
  if (!Array.isArray(documents)) throw new Error(`${path}: not a YAML stream`);
  return documents.flatMap((document, index) => {
    if (document.errors.length > 0) {
      throw new Error(`${path}, document ${index + 1}: ${document.errors[0]?.message}`);
    }
    const value: unknown = document.toJS();
    return value === null || value === undefined ? [] : [value];
  });
}

function yamlFilesUnder(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return yamlFilesUnder(path);
    return /\.ya?ml$/.test(entry.name) ? [path] : [];
  });
}

const packageScripts = (JSON.parse(readText("package.json")) as { scripts: Record<string, string> })
  .scripts;

// --- docker-compose.yml ------------------------------------------------------------------------

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test?: string[] | string };
  stop_grace_period?: string;
  restart?: string;
  deploy?: { replicas?: number };
  volumes?: string[];
  ports?: string[];
}

const compose = parseYaml("docker-compose.yml")[0] as {
  services: Record<string, ComposeService>;
};
const composeServices = Object.entries(compose.services);

function composeEnv(service: ComposeService): Record<string, string> {
  const environment = service.environment ?? {};
  if (Array.isArray(environment)) {
    return Object.fromEntries(
      environment.map((entry) => {
        const at = entry.indexOf("=");
        return at < 0 ? [entry, ""] : [entry.slice(0, at), entry.slice(at + 1)];
      }),
    );
  }
  return Object.fromEntries(
    Object.entries(environment).map(([name, value]) => [name, String(value ?? "")]),
  );
}

function commandLine(command: string[] | string | undefined): string {
  return Array.isArray(command) ? command.join(" ") : (command ?? "");
}

/** Services built from this repository's Dockerfile, as opposed to PostgreSQL and Temporal. */
function isLiveDashService(service: ComposeService): boolean {
  return service.build !== undefined || (service.image ?? "").startsWith("livedash-scheduler");
}

function imageRepository(image: string): string {
  return image.replace(/@sha256:[0-9a-f]+$/, "").replace(/:[^/:]+$/, "");
}

/**
 * Resolves compose's ${VAR}, ${VAR:-default} and ${VAR:?message} against `env`; a required or
 * bare variable missing from `env` throws.
 */
function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g,
    (match, name: string | undefined, operator: string | undefined, rest: string | undefined) => {
      if (match === "$$" || name === undefined) return "$";
      const given = env[name];
      if (given !== undefined && given !== "") return given;
      if (operator?.endsWith("-")) return rest ?? "";
      throw new Error(`${match}: ${name} is required (${rest ?? "no default"})`);
    },
  );
}

function durationSeconds(value: string): number {
  let total = 0;
  for (const [, amount, unit] of value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    const factor = { ms: 0.001, s: 1, m: 60, h: 3600 }[unit as "ms" | "s" | "m" | "h"];
    total += Number(amount) * factor;
  }
  return total;
}

// --- Kubernetes manifests ----------------------------------------------------------------------

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string };
    configMapKeyRef?: { name: string; key: string };
    fieldRef?: { fieldPath: string };
  };
}

interface Probe {
  httpGet?: { path: string; port: number | string };
  periodSeconds?: number;
  failureThreshold?: number;
}

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number }[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string }[];
}

interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds?: number;
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    seccompProfile?: { type: string };
  };
  volumes?: { name: string; emptyDir?: object }[];
}

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  // biome-ignore lint/suspicious/noExplicitAny: each kind's spec is narrowed where it is read
  spec?: any;
}

interface Workload {
  object: K8sObject;
  file: string;
  pod: PodSpec;
  podLabels: Record<string, string>;
}

interface Manifest {
  file: string;
  object: K8sObject;
}

const k8sFiles = yamlFilesUnder(K8S_DIR);
const manifests: Manifest[] = k8sFiles.flatMap((file) =>
  parseYaml(file).map((object) => ({ file, object: object as K8sObject })),
);
const kustomizations = manifests.filter((m) => m.object.kind === "Kustomization");
const resources = manifests.filter((m) => m.object.kind !== "Kustomization");
const mainKustomization = kustomizations.find((m) => m.file === `${K8S_DIR}/kustomization.yaml`);

function only<T>(items: T[], what: string): T {
  if (items.length !== 1) throw new Error(`expected exactly one ${what}, found ${items.length}`);
  return items[0] as T;
}

const configMap = only(
  resources.filter((m) => m.object.kind === "ConfigMap"),
  "ConfigMap under deploy/k8s",
);
const secret = only(
  resources.filter((m) => m.object.kind === "Secret"),
  "Secret (template) under deploy/k8s",
);
const configData = configMap.object.data ?? {};
/** The configuration the Kubernetes processes read, as lib/config.ts parses it. */
const k8sConfig = loadConfig(configData);

const workloads: Workload[] = resources.flatMap(({ file, object }) => {
  if (!["Deployment", "StatefulSet", "DaemonSet", "Job"].includes(object.kind)) return [];
  const template = object.spec?.template as
    | { metadata?: { labels?: Record<string, string> }; spec: PodSpec }
    | undefined;
  if (!template) throw new Error(`${file}: ${object.kind} ${object.metadata.name} has no template`);
  return [{ object, file, pod: template.spec, podLabels: template.metadata?.labels ?? {} }];
});

function podContainers(pod: PodSpec): Container[] {
  return [...(pod.initContainers ?? []), ...pod.containers];
}

function containerCommand(container: Container): string {
  return [...(container.command ?? []), ...(container.args ?? [])].join(" ");
}

function workloadRunning(command: string): Workload[] {
  return workloads.filter((w) => w.pod.containers.some((c) => containerCommand(c) === command));
}

function resolvePort(container: Container, port: number | string | undefined): number | undefined {
  if (typeof port === "number") return port;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

function selects(selector: Record<string, string> | undefined, labels: Record<string, string>) {
  return (
    selector !== undefined &&
    Object.keys(selector).length > 0 &&
    Object.entries(selector).every(([key, value]) => labels[key] === value)
  );
}

// --- Dockerfile --------------------------------------------------------------------------------

interface DockerStage {
  name: string | undefined;
  from: string;
  instructions: { keyword: string; args: string }[];
}

/** Stages and instructions; comment lines dropped and `\` continuations joined, as Docker does. */
function parseDockerfile(text: string): { args: Record<string, string>; stages: DockerStage[] } {
  const lines: string[] = [];
  let pending = "";
  for (const raw of text.split("\n")) {
    if (raw.trim().startsWith("#")) continue;
    const line = raw.trimEnd();
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = "";
    if (full) lines.push(full);
  }
  const args: Record<string, string> = {};
  const stages: DockerStage[] = [];
  for (const line of lines) {
    const [, keyword = "", rest = ""] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const upper = keyword.toUpperCase();
    if (upper === "FROM") {
      const [, image = "", name] = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?/i.exec(rest) ?? [];
      stages.push({
        name,
        from: image.replace(/\$\{?(\w+)\}?/g, (_, v: string) => args[v] ?? ""),
        instructions: [],
      });
    } else if (upper === "ARG" && stages.length === 0) {
      const [name = "", value = ""] = rest.split("=");
      args[name] = value;
    } else {
      stages.at(-1)?.instructions.push({ keyword: upper, args: rest });
    }
  }
  return { args, stages };
}

/** ENV instruction pairs (KEY=VALUE form; the values used here have no spaces). */
function envPairs(args: string): [string, string][] {
  return args.split(/\s+/).map((pair) => {
    const at = pair.indexOf("=");
    return [pair.slice(0, at), pair.slice(at + 1).replace(/^"|"$/g, "")];
  });
}

/** A COPY instruction's sources (relative to the build context, or the --from stage) and flags. */
function copySources(args: string): { from: string | undefined; sources: string[] } {
  const tokens = args.split(/\s+/);
  const from = tokens.find((t) => t.startsWith("--from="))?.slice("--from=".length);
  const paths = tokens.filter((t) => !t.startsWith("--"));
  return {
    from,
    sources: paths.slice(0, -1).map((p) => p.replace(/^\.\//, "").replace(/\/$/, "")),
  };
}

const dockerfile = parseDockerfile(readText("Dockerfile"));
const runtimeStage = dockerfile.stages.at(-1) as DockerStage;
const runtimeCopies = runtimeStage.instructions
  .filter((i) => i.keyword === "COPY")
  .map((i) => copySources(i.args));
const runtimeEnv = Object.fromEntries(
  runtimeStage.instructions.filter((i) => i.keyword === "ENV").flatMap((i) => envPairs(i.args)),
);

// --- npm scripts and the sources they run ------------------------------------------------------

/** `npm run <script>` / `npm start` in a command line, as the script name. */
function npmScript(command: string): string | undefined {
  const match = /\bnpm\s+(?:run(?:-script)?\s+([\w:.-]+)|(start|test|stop|restart)\b)/.exec(
    command,
  );
  return match?.[1] ?? match?.[2];
}

/** Every command line a deployment file runs, with where it comes from. */
const deployCommands: { where: string; command: string }[] = [
  ...composeServices
    // Third-party images (Prometheus) take their own flags as command.
    .filter(([, service]) => service.command !== undefined && isLiveDashService(service))
    .map(([name, service]) => ({
      where: `docker-compose.yml service ${name}`,
      command: commandLine(service.command),
    })),
  ...workloads.flatMap((w) =>
    podContainers(w.pod)
      .filter((c) => c.command || c.args)
      .map((c) => ({
        where: `${w.file} ${w.object.kind} ${w.object.metadata.name}`,
        command: containerCommand(c),
      })),
  ),
  ...runtimeStage.instructions
    .filter((i) => i.keyword === "CMD" || i.keyword === "ENTRYPOINT")
    .map((i) => ({
      where: `Dockerfile ${i.keyword}`,
      command: i.args.startsWith("[") ? (JSON.parse(i.args) as string[]).join(" ") : i.args,
    })),
];

const RELATIVE_IMPORT = [
  /(?:import|export)\s[^;]*?\sfrom\s*["'](\.{1,2}\/[^"']+)["']/g,
  /import\s*["'](\.{1,2}\/[^"']+)["']/g,
  /import\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g,
  // Files loaded by path, e.g. the workflow code the worker bundles (workers/runtime.ts).
  /new URL\(\s*["'](\.{1,2}\/[^"']+)["']\s*,\s*import\.meta\.url/g,
];

/** Every project file an entry point loads, following relative imports (generated code aside). */
function sourceClosure(entry: string): string[] {
  const seen = new Set<string>();
  const queue = [entry];
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    const source = readText(file);
    for (const pattern of RELATIVE_IMPORT) {
      for (const [, specifier = ""] of source.matchAll(pattern)) {
        const target = relative(ROOT, resolve(ROOT, dirname(file), specifier));
        if (target.startsWith("lib/generated/")) continue;
        if (!existsSync(join(ROOT, target))) {
          throw new Error(`${file} imports ${specifier}, which does not exist`);
        }
        queue.push(target);
      }
    }
  }
  return [...seen].sort();
}

/** The TypeScript files the deployed npm scripts start with tsx (api/main.ts, ...). */
function deployedEntryPoints(): string[] {
  const entries = new Set<string>();
  for (const { where, command } of deployCommands) {
    const script = packageScripts[npmScript(command) ?? ""] ?? "";
    const entry = /\btsx\s+(\S+\.tsx?)/.exec(script)?.[1];
    if (!entry) throw new Error(`${where}: "${script}" should run a TypeScript file with tsx`);
    entries.add(entry);
  }
  return [...entries].sort();
}

// ------------------------------------------------------------------------------------------------

describe("every scheduler type is deployed", () => {
  it.each(WORKER_TYPES)("%s has a docker compose worker service", (type) => {
    const command = `npm run scheduler:${type}`;
    const services = composeServices.filter(([, s]) => commandLine(s.command) === command);
    expect(
      services.map(([name]) => name),
      `docker-compose.yml needs one service running "${command}"`,
    ).toHaveLength(1);
  });

  it.each(WORKER_TYPES)("%s has a Kubernetes Deployment", (type) => {
    const command = `npm run scheduler:${type}`;
    const deployments = workloadRunning(command).filter((w) => w.object.kind === "Deployment");
    expect(
      deployments.map((w) => w.object.metadata.name),
      `deploy/k8s needs one Deployment running "${command}"`,
    ).toHaveLength(1);
  });
});

describe("commands", () => {
  it("every npm script the deployment files run exists in package.json", () => {
    expect(deployCommands.length).toBeGreaterThan(0);
    for (const { where, command } of deployCommands) {
      const script = npmScript(command);
      expect(script, `${where}: "${command}" should start the platform via npm`).toBeDefined();
      expect(
        packageScripts[script ?? ""],
        `${where} runs "npm run ${script}", which package.json does not define`,
      ).toBeDefined();
    }
  });

  it("those scripts are single commands, so the signals npm forwards reach the process", () => {
    // The image sets NPM_CONFIG_SCRIPT_SHELL=/bin/bash, and bash execs a lone simple command:
    // npm -> tsx -> node, with SIGTERM relayed at each step. A compound script (&&, ;, |) would
    // keep a shell in between that dies on SIGTERM, and the process would get no graceful stop.
    expect(runtimeEnv.NPM_CONFIG_SCRIPT_SHELL, "Dockerfile runtime ENV").toBe("/bin/bash");
    for (const { where, command } of deployCommands) {
      const script = packageScripts[npmScript(command) ?? ""] ?? "";
      expect(script, `${where}: package.json script for "${command}"`).not.toMatch(/[;&|`]|\$\(/);
    }
  });
});

describe("Dockerfile", () => {
  it("builds in stages from pinned base images", () => {
    const { stages } = dockerfile;
    expect(stages.length, "a deps stage and a slim runtime stage at least").toBeGreaterThanOrEqual(
      2,
    );
    const stageNames = new Set(stages.map((s) => s.name).filter(Boolean));
    for (const stage of stages) {
      if (stageNames.has(stage.from)) continue;
      expect(stage.from, "base images are pinned to a version, never latest").toMatch(
        /^[\w./-]+:(?!latest\b)[\w.-]*\d[\w.-]*(@sha256:[0-9a-f]{64})?$/,
      );
    }
  });

  it("installs production dependencies only", () => {
    const installs = dockerfile.stages
      .flatMap((s) => s.instructions)
      .filter((i) => i.keyword === "RUN" && /\bnpm\s+(ci|install|i)\b/.test(i.args));
    expect(installs.length, "npm ci in a build stage").toBeGreaterThan(0);
    for (const install of installs) {
      expect(install.args, "dev dependencies stay out of the image").toContain("--omit=dev");
    }
    expect(runtimeEnv.NODE_ENV, "runtime stage ENV").toBe("production");
  });

  it("runs as a non-root user with `npm start` by default", () => {
    const user = runtimeStage.instructions.filter((i) => i.keyword === "USER").at(-1)?.args;
    expect(user, "the runtime stage sets USER").toBeDefined();
    expect(user?.split(":")[0], "USER is not root").not.toMatch(/^(root|0)$/);
    const cmd = runtimeStage.instructions.filter((i) => i.keyword === "CMD").at(-1)?.args;
    expect(JSON.parse(cmd ?? "null"), "default CMD (exec form)").toEqual(["npm", "start"]);
  });

  it("sets only Node's and npm's variables in the image", () => {
    for (const name of Object.keys(runtimeEnv)) {
      expect(name, "configuration belongs to compose/Kubernetes, not the image").toMatch(
        IMAGE_ENV_NAME,
      );
    }
  });

  it("copies every source file the deployed entry points load into the runtime stage", () => {
    const copied = runtimeCopies.filter((c) => c.from === undefined).flatMap((c) => c.sources);
    const covered = (file: string) =>
      copied.some((source) => file === source || file.startsWith(`${source}/`));
    for (const entry of deployedEntryPoints()) {
      const missing = sourceClosure(entry).filter((file) => !covered(file));
      expect(missing.join(", "), `files ${entry} loads that the image does not COPY`).toBe("");
    }
    // Read at run time rather than imported: package.json (npm scripts, "type": "module"),
    // tsconfig.json (tsx's compiler options, JSX), prisma/ (migrations applied by db:migrate).
    for (const file of [
      "package.json",
      "tsconfig.json",
      "prisma/migrations",
      "prisma/schema.prisma",
    ]) {
      expect(covered(file), `the runtime stage copies ${file}`).toBe(true);
    }
  });

  it("takes node_modules and the generated Prisma client from the production deps stage", () => {
    for (const path of ["node_modules", "lib/generated"]) {
      const copy = runtimeCopies.find((c) => c.from && c.sources.some((s) => s.endsWith(path)));
      expect(copy, `COPY --from=<deps stage> .../${path}`).toBeDefined();
      const stage = dockerfile.stages.find((s) => s.name === copy?.from);
      const installs = stage?.instructions.some(
        (i) => i.keyword === "RUN" && /\bnpm ci\b.*--omit=dev/.test(i.args),
      );
      expect(installs, `stage ${copy?.from} runs npm ci --omit=dev`).toBe(true);
    }
  });

  it(".dockerignore keeps local state, secrets and tests out of the build context", () => {
    const patterns = readText(".dockerignore")
      .split("\n")
      .map((line) => line.trim().replace(/^\//, "").replace(/\/$/, ""))
      .filter((line) => line && !line.startsWith("#"));
    for (const required of [
      "node_modules",
      ".data",
      ".tools",
      ".git",
      ".env",
      "lib/generated",
      "test",
      "bench",
      "coverage",
    ]) {
      expect(patterns, `.dockerignore lists ${required}`).toContain(required);
    }
    const copiedFromContext = dockerfile.stages
      .flatMap((s) => s.instructions)
      .filter((i) => i.keyword === "COPY")
      .map((i) => copySources(i.args))
      .filter((c) => c.from === undefined)
      .flatMap((c) => c.sources);
    for (const source of copiedFromContext) {
      const excluded = patterns.find((p) => source === p || source.startsWith(`${p}/`));
      expect(excluded, `Dockerfile copies ${source}, which .dockerignore excludes`).toBeUndefined();
    }
  });
});

describe("environment variables", () => {
  const known = new Set<string>([...ENV_VARS, ...APP_ENV_EXTRAS]);

  it("docker compose sets only variables the platform (or each third-party image) reads", () => {
    for (const [name, service] of composeServices) {
      const allowed = isLiveDashService(service)
        ? known
        : new Set(THIRD_PARTY_ENV[imageRepository(service.image ?? "")] ?? []);
      for (const variable of Object.keys(composeEnv(service))) {
        expect(allowed.has(variable), `docker-compose.yml service ${name} sets ${variable}`).toBe(
          true,
        );
      }
    }
  });

  it("the ConfigMap, the Secret and container env set only variables lib/config.ts knows", () => {
    const names = [
      ...Object.keys(configData).map((n) => [n, `ConfigMap ${configMap.object.metadata.name}`]),
      ...Object.keys(secret.object.stringData ?? {}).map((n) => [n, secret.file]),
      ...workloads.flatMap((w) =>
        podContainers(w.pod).flatMap((c) =>
          (c.env ?? []).map((e) => [e.name, `${w.file} container ${c.name}`]),
        ),
      ),
    ];
    for (const [name = "", where] of names) {
      expect(known.has(name), `${where} sets ${name}, which lib/config.ts does not read`).toBe(
        true,
      );
    }
  });

  it("Kubernetes configures every variable lib/config.ts reads", () => {
    const configured = new Set([
      ...Object.keys(configData),
      ...Object.keys(secret.object.stringData ?? {}),
      ...workloads.flatMap((w) =>
        podContainers(w.pod)
          .flatMap((c) => c.env ?? [])
          .map((e) => e.name),
      ),
    ]);
    const missing = ENV_VARS.filter((v) => !configured.has(v) && !FORBIDDEN_VARS.includes(v));
    expect(missing, "add them to deploy/k8s/configmap.yaml (or the Secret)").toEqual([]);
  });

  it("no deployment file enables the admin API without a token", () => {
    const composeSets = composeServices.flatMap(([, s]) => Object.keys(composeEnv(s)));
    for (const forbidden of FORBIDDEN_VARS) {
      expect(composeSets, "docker-compose.yml").not.toContain(forbidden);
      expect(Object.keys(configData), "ConfigMap").not.toContain(forbidden);
      expect(
        workloads
          .flatMap((w) => podContainers(w.pod).flatMap((c) => c.env ?? []))
          .map((e) => e.name),
        "container env",
      ).not.toContain(forbidden);
    }
  });

  it("the ConfigMap's values pass the platform's own validation", () => {
    expect(() => loadConfig(configData)).not.toThrow();
  });

  it("every LiveDash compose service's environment passes the platform's validation", () => {
    for (const [name, service] of composeServices.filter(([, s]) => isLiveDashService(s))) {
      const env = Object.fromEntries(
        Object.entries(composeEnv(service)).map(([k, v]) => [
          k,
          interpolate(v, COMPOSE_SAMPLE_ENV),
        ]),
      );
      expect(() => loadConfig(env), `docker-compose.yml service ${name}`).not.toThrow();
    }
  });
});

describe("secrets", () => {
  it("the Secret template holds the platform's secrets as placeholders only", () => {
    const values = secret.object.stringData ?? {};
    expect(Object.keys(values).sort(), `${secret.file} keys`).toEqual([...SECRET_VARS].sort());
    expect(
      secret.object.data,
      `${secret.file}: base64 data hides what is committed`,
    ).toBeUndefined();
    for (const [key, value] of Object.entries(values)) {
      expect(value, `${secret.file} ${key} must be a ${PLACEHOLDER} placeholder`).toContain(
        PLACEHOLDER,
      );
    }
    const password = new URL(values.DATABASE_URL ?? "postgresql://x").password;
    expect(password, `${secret.file} DATABASE_URL password`).toBe(PLACEHOLDER);
  });

  it("the Secret template is not applied by kustomize (it would overwrite the real one)", () => {
    const listed = (mainKustomization?.object as { resources?: string[] } | undefined)?.resources;
    expect(listed, "deploy/k8s/kustomization.yaml resources").not.toContain(
      relative(K8S_DIR, secret.file),
    );
  });

  it("secrets reach containers only through secretKeyRef to keys the Secret has", () => {
    const keys = Object.keys(secret.object.stringData ?? {});
    for (const w of workloads) {
      for (const c of podContainers(w.pod)) {
        for (const e of c.env ?? []) {
          const where = `${w.file} container ${c.name} ${e.name}`;
          if (SECRET_VARS.includes(e.name)) {
            expect(e.value, `${where}: no literal secret`).toBeUndefined();
            expect(e.valueFrom?.secretKeyRef?.name, where).toBe(secret.object.metadata.name);
          }
          const ref = e.valueFrom?.secretKeyRef;
          if (ref) {
            expect(ref.name, where).toBe(secret.object.metadata.name);
            expect(keys, `${where}: key ${ref.key}`).toContain(ref.key);
          }
        }
      }
    }
    for (const name of SECRET_VARS) {
      expect(Object.keys(configData), `ConfigMap must not hold ${name}`).not.toContain(name);
    }
  });

  it("docker compose takes secrets from .env or the shell, with no default committed", () => {
    const secretVars = [
      ...SECRET_VARS,
      "POSTGRES_PASSWORD",
      "POSTGRES_PWD",
      "GF_SECURITY_ADMIN_PASSWORD",
    ];
    for (const [name, service] of composeServices) {
      for (const [variable, value] of Object.entries(composeEnv(service))) {
        if (!secretVars.includes(variable)) continue;
        const where = `docker-compose.yml service ${name} ${variable}`;
        if (variable === "DATABASE_URL") {
          const password = /^postgres(?:ql)?:\/\/[^:/@]+:([^@]*)@/.exec(value)?.[1];
          expect(password, `${where}: password`).toMatch(/^\$\{[A-Z_]+:\?[^}]*\}$/);
        } else if (OPTIONAL_SECRET_VARS.includes(variable)) {
          expect(value, `${where}: optional, empty by default`).toBe(`\${${variable}:-}`);
        } else {
          expect(value, `${where}: required interpolation`).toMatch(/^\$\{[A-Z_]+:\?[^}]*\}$/);
        }
      }
    }
  });

  it("no deployment file contains something that looks like a real credential", () => {
    const files = ["Dockerfile", "docker-compose.yml", ".dockerignore", ...k8sFiles];
    for (const file of files) {
      const text = readText(file);
      expect(text, `${file}: OpenAI key`).not.toMatch(/\bsk-[A-Za-z0-9_-]{20,}/);
      expect(text, `${file}: private key`).not.toMatch(/-----BEGIN [A-Z ]*PRIVATE KEY-----/);
    }
  });
});

describe("docker compose", () => {
  const services = Object.fromEntries(composeServices);
  const dependsOn = (service: ComposeService): Record<string, { condition?: string }> =>
    Array.isArray(service.depends_on)
      ? Object.fromEntries(service.depends_on.map((d) => [d, {}]))
      : (service.depends_on ?? {});

  it("pins third-party images and checks PostgreSQL's health on a volume", () => {
    for (const [name, service] of composeServices.filter(([, s]) => !isLiveDashService(s))) {
      expect(service.image, `service ${name} image`).toMatch(/:(?!latest\b)[\w.-]*\d/);
    }
    const postgres = composeServices.find(([, s]) => imageRepository(s.image ?? "") === "postgres");
    expect(postgres?.[1].healthcheck?.test, "postgres healthcheck").toBeDefined();
    expect(postgres?.[1].volumes?.length, "postgres data volume").toBeGreaterThan(0);
  });

  it("runs the migration once, before every LiveDash service", () => {
    const migrate = composeServices.filter(
      ([, s]) => commandLine(s.command) === "npm run db:migrate",
    );
    const [migrateName] = only(migrate, 'service running "npm run db:migrate"');
    expect(services[migrateName]?.restart, "a one-shot job is not restarted").toBe("no");
    for (const [name, service] of composeServices) {
      if (!isLiveDashService(service) || name === migrateName) continue;
      expect(
        dependsOn(service)[migrateName]?.condition,
        `service ${name} waits for the migration`,
      ).toBe("service_completed_successfully");
    }
  });

  it("runs the API alone, with a required admin token", () => {
    const [name, api] = only(
      composeServices.filter(([, s]) => commandLine(s.command) === "npm run api"),
      'service running "npm run api"',
    );
    const env = composeEnv(api);
    expect(env.SCHEDULER_ENABLED, `service ${name} SCHEDULER_ENABLED`).toBe("false");
    expect(env.ADMIN_API_TOKEN, `service ${name} ADMIN_API_TOKEN`).toMatch(
      /^\$\{ADMIN_API_TOKEN:\?[^}]+\}$/,
    );
    const test = commandLine(api.healthcheck?.test);
    expect(test, `service ${name} healthcheck uses PORT`).toContain("process.env.PORT");
    expect(env.PORT, `service ${name} PORT`).toBeDefined();
  });

  it.each(WORKER_TYPES)("the %s worker drains on stop and reports health", (type) => {
    const [name, worker] = only(
      composeServices.filter(([, s]) => commandLine(s.command) === `npm run scheduler:${type}`),
      `worker service of ${type}`,
    );
    const env = composeEnv(worker);
    const config = loadConfig(
      Object.fromEntries(
        Object.entries(env).map(([k, v]) => [k, interpolate(v, COMPOSE_SAMPLE_ENV)]),
      ),
    );
    const graceS = config.scheduler.shutdownGraceMs / 1000;
    expect(
      durationSeconds(worker.stop_grace_period ?? "10s"),
      `service ${name} stop_grace_period must exceed WORKER_SHUTDOWN_GRACE_MS (${graceS} s) + ${SHUTDOWN_HEADROOM_S} s`,
    ).toBeGreaterThanOrEqual(graceS + SHUTDOWN_HEADROOM_S);
    expect(env.SCHEDULER_ENABLED ?? "true", `service ${name} SCHEDULER_ENABLED`).not.toBe("false");
    expect(env.WORKER_HEALTH_PORT, `service ${name} WORKER_HEALTH_PORT`).toBeDefined();
    const test = commandLine(worker.healthcheck?.test);
    expect(test, `service ${name} healthcheck`).toContain("process.env.WORKER_HEALTH_PORT");
    // Replicas need distinct worker identities: leave SCHEDULER_INSTANCE_ID to its default
    // (<hostname>-<pid>, the container id).
    expect(env.SCHEDULER_INSTANCE_ID, `service ${name} SCHEDULER_INSTANCE_ID`).toBeUndefined();
  });

  it("runs several replicas of a worker type, as production does", () => {
    const replicas = composeServices
      .filter(([, s]) => commandLine(s.command).startsWith("npm run scheduler:"))
      .map(([, s]) => s.deploy?.replicas ?? 1);
    expect(Math.max(...replicas), "deploy.replicas of the busiest worker type").toBeGreaterThan(1);
  });

  it("health checks name probe routes that exist", () => {
    for (const [name, service] of composeServices.filter(([, s]) => isLiveDashService(s))) {
      const test = commandLine(service.healthcheck?.test);
      if (!test) continue;
      const routes =
        commandLine(service.command) === "npm run api" ? API_PROBE_ROUTES : WORKER_PROBE_ROUTES;
      const paths = [...test.matchAll(/'(\/[^']*)'/g)].map((m) => m[1]);
      expect(paths.length, `service ${name} healthcheck requests a path`).toBeGreaterThan(0);
      for (const path of paths) expect(routes, `service ${name} healthcheck`).toContain(path);
    }
  });
});

describe("docker compose observability: Prometheus and Grafana", () => {
  const service = (repository: string) =>
    only(
      composeServices.filter(([, s]) => imageRepository(s.image ?? "") === repository),
      `service running ${repository}`,
    );
  /** host path (relative to the repository) -> container path, of a service's bind mounts. */
  const binds = (s: ComposeService) =>
    Object.fromEntries(
      (s.volumes ?? [])
        .filter((v) => v.startsWith("./"))
        .map((v) => {
          const [host = "", target = ""] = v.split(":");
          return [host.slice(2), target];
        }),
    );
  const [, prometheus] = service("prom/prometheus");
  const [, grafana] = service("grafana/grafana");

  it("Prometheus loads the scrape configuration and the alert rules of deploy/prometheus", () => {
    const mounted = binds(prometheus);
    expect(Object.keys(mounted).sort()).toEqual([
      "deploy/prometheus/prometheus.compose.yml",
      "deploy/prometheus/rules.yml",
    ]);
    const configPath = mounted["deploy/prometheus/prometheus.compose.yml"];
    expect(commandLine(prometheus.command)).toContain(`--config.file=${configPath}`);
    // rules.yml is named relative to the configuration: both must sit in one folder.
    expect(dirname(mounted["deploy/prometheus/rules.yml"] ?? "")).toBe(dirname(configPath ?? ""));
    const config = parseYaml("deploy/prometheus/prometheus.compose.yml")[0] as {
      rule_files: string[];
    };
    expect(config.rule_files).toEqual(["rules.yml"]);
  });

  it("Prometheus scrapes every API and worker service on the ports they serve metrics on", () => {
    const config = parseYaml("deploy/prometheus/prometheus.compose.yml")[0] as {
      scrape_configs: {
        job_name: string;
        metrics_path?: string;
        dns_sd_configs: { names: string[]; port: number }[];
      }[];
    };
    const targets = config.scrape_configs.flatMap((job) =>
      job.dns_sd_configs.flatMap((sd) =>
        sd.names.map((name) => ({ name, port: sd.port, path: job.metrics_path ?? "/metrics" })),
      ),
    );
    for (const [name, s] of composeServices.filter(([, s]) => isLiveDashService(s))) {
      const command = commandLine(s.command);
      if (command === "npm run db:migrate") continue;
      const env = composeEnv(s);
      const port = command === "npm run api" ? env.PORT : env.WORKER_METRICS_PORT;
      expect(port, `service ${name} serves metrics on a set port`).toBeDefined();
      expect(targets, `Prometheus scrapes service ${name}`).toContainEqual({
        name,
        port: Number(port),
        path: "/metrics",
      });
    }
    expect(targets.map((t) => t.name).every((n) => compose.services[n])).toBe(true);
  });

  it("Grafana is provisioned with the Prometheus data source and the LiveDash dashboard", () => {
    const mounted = binds(grafana);
    expect(mounted["deploy/grafana/provisioning"]).toBe("/etc/grafana/provisioning");
    const dashboardsDir = mounted["deploy/grafana/dashboards"];
    const datasources = parseYaml("deploy/grafana/provisioning/datasources/prometheus.yml")[0] as {
      datasources: { uid: string; type: string; url: string }[];
    };
    const [source] = datasources.datasources;
    expect(source?.type).toBe("prometheus");
    const prometheusPort = (prometheus.ports ?? [])[0]?.split(":").at(-1);
    expect(source?.url).toBe(`http://${service("prom/prometheus")[0]}:${prometheusPort}`);
    const providers = parseYaml("deploy/grafana/provisioning/dashboards/livedash.yml")[0] as {
      providers: { type: string; options: { path: string } }[];
    };
    expect(providers.providers.map((p) => p.options.path)).toEqual([dashboardsDir]);
    expect(composeEnv(grafana).GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe(
      `${dashboardsDir}/livedash.json`,
    );

    const dashboard = JSON.parse(readText("deploy/grafana/dashboards/livedash.json")) as {
      uid: string;
      panels: {
        id: number;
        type: string;
        gridPos: { x: number; w: number };
        datasource?: { uid: string };
        targets?: { expr: string; datasource?: { uid: string } }[];
      }[];
    };
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size, "panel ids are unique").toBe(ids.length);
    for (const panel of dashboard.panels.filter((p) => p.type !== "row")) {
      expect(panel.gridPos.x + panel.gridPos.w).toBeLessThanOrEqual(24);
      expect(panel.datasource?.uid).toBe(source?.uid);
      expect(panel.targets?.length).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) {
        expect(target.expr).not.toBe("");
        expect(target.datasource?.uid).toBe(source?.uid);
      }
    }
  });

  it("Prometheus and Grafana publish on the loopback interface only", () => {
    for (const s of [prometheus, grafana]) {
      for (const port of s.ports ?? []) expect(port).toMatch(/^127\.0\.0\.1:/);
    }
  });
});

describe("Kubernetes manifests", () => {
  const namespace = only(
    resources.filter((m) => m.object.kind === "Namespace"),
    "Namespace",
  ).object.metadata.name;
  const healthPort = k8sConfig.scheduler.healthPort;
  const metricsPort = k8sConfig.scheduler.metricsPort;
  const graceS = k8sConfig.scheduler.shutdownGraceMs / 1000;

  it("kustomization.yaml lists every manifest but the Secret template and optional/", () => {
    const listed = (mainKustomization?.object as { resources?: string[] } | undefined)?.resources;
    expect(listed, "deploy/k8s/kustomization.yaml").toBeDefined();
    const expected = k8sFiles
      .filter((f) => !f.includes("/optional/") && f !== secret.file)
      .filter((f) => !kustomizations.some((k) => k.file === f))
      .map((f) => relative(K8S_DIR, f))
      .sort();
    expect([...(listed ?? [])].sort()).toEqual(expected);
    expect(
      (mainKustomization?.object as { namespace?: string } | undefined)?.namespace,
      "kustomization namespace",
    ).toBe(namespace);
  });

  it("every object lives in the platform's namespace", () => {
    for (const { file, object } of resources) {
      if (object.kind === "Namespace") continue;
      expect(object.metadata.namespace, `${file} ${object.kind} ${object.metadata.name}`).toBe(
        namespace,
      );
    }
  });

  it("every container runs the release image that kustomization.yaml pins", () => {
    const images = (mainKustomization?.object as { images?: { name: string; newTag?: string }[] })
      ?.images;
    for (const w of workloads) {
      for (const c of podContainers(w.pod)) {
        const image = images?.find((i) => i.name === c.image);
        expect(
          image,
          `${w.file} container ${c.name} image ${c.image} is set by kustomize`,
        ).toBeDefined();
        expect(image?.newTag, `${c.image} tag`).toMatch(/^(?!latest$)\S+$/);
      }
    }
  });

  it("every container runs as non-root with a read-only root filesystem and requests resources", () => {
    expect(workloads.length).toBeGreaterThan(0);
    for (const { file, object, pod } of workloads) {
      const where = `${file} ${object.kind} ${object.metadata.name}`;
      expect(pod.automountServiceAccountToken, `${where}: no API token in the pod`).toBe(false);
      expect(pod.securityContext?.seccompProfile?.type, `${where}: seccomp`).toBe("RuntimeDefault");
      for (const c of podContainers(pod)) {
        const at = `${where} container ${c.name}`;
        const nonRoot = c.securityContext?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot;
        const uid = c.securityContext?.runAsUser ?? pod.securityContext?.runAsUser;
        expect(nonRoot, `${at}: runAsNonRoot`).toBe(true);
        // Kubelet can only verify a numeric uid for runAsNonRoot (the image says USER node).
        expect(uid, `${at}: numeric non-root runAsUser`).toBeGreaterThan(0);
        expect(c.securityContext?.allowPrivilegeEscalation, `${at}`).toBe(false);
        expect(c.securityContext?.capabilities?.drop, `${at}: drop capabilities`).toContain("ALL");
        expect(c.securityContext?.readOnlyRootFilesystem, `${at}: read-only root`).toBe(true);
        // tsx caches compiled files and npm writes logs under /tmp.
        const tmp = c.volumeMounts?.find((m) => m.mountPath === "/tmp");
        const volume = pod.volumes?.find((v) => v.name === tmp?.name);
        expect(volume?.emptyDir, `${at}: an emptyDir at /tmp`).toBeDefined();
        for (const resource of ["cpu", "memory"]) {
          expect(c.resources?.requests?.[resource], `${at}: ${resource} request`).toBeDefined();
        }
        expect(c.resources?.limits?.memory, `${at}: memory limit`).toBeDefined();
      }
    }
  });

  it("every Deployment's selector matches its pods, and Services and PDBs select pods", () => {
    for (const w of workloads.filter((x) => x.object.kind === "Deployment")) {
      expect(
        selects(w.object.spec?.selector?.matchLabels, w.podLabels),
        `${w.file} ${w.object.metadata.name} selector`,
      ).toBe(true);
    }
    for (const { file, object } of resources) {
      const selector =
        object.kind === "Service"
          ? object.spec?.selector
          : object.kind === "PodDisruptionBudget"
            ? object.spec?.selector?.matchLabels
            : undefined;
      if (selector === undefined) continue;
      const matched = workloads.filter((w) => selects(selector, w.podLabels));
      expect(matched.length, `${file} ${object.kind} ${object.metadata.name} selects pods`).toBe(1);
    }
  });

  describe.each(WORKER_TYPES)("the %s worker", (type: WorkerType) => {
    const deployment = () =>
      only(
        workloadRunning(`npm run scheduler:${type}`).filter((w) => w.object.kind === "Deployment"),
        `Deployment of ${type}`,
      );
    const container = () =>
      deployment().pod.containers.find(
        (c) => containerCommand(c) === `npm run scheduler:${type}`,
      ) as Container;

    it("reads the ConfigMap and takes its identity from the pod name", () => {
      const c = container();
      expect(
        c.envFrom?.map((e) => e.configMapRef?.name),
        "envFrom the ConfigMap",
      ).toContain(configMap.object.metadata.name);
      const instanceId = c.env?.find((e) => e.name === "SCHEDULER_INSTANCE_ID");
      expect(instanceId?.valueFrom?.fieldRef?.fieldPath, "SCHEDULER_INSTANCE_ID").toBe(
        "metadata.name",
      );
      expect(c.env?.find((e) => e.name === "SCHEDULER_ENABLED")?.value ?? "true").not.toBe("false");
    });

    it("probes /livez and /readyz on WORKER_HEALTH_PORT, with a startup budget", () => {
      const c = container();
      // Liveness must not depend on Temporal or PostgreSQL (a restart would not fix them).
      expect(c.livenessProbe?.httpGet?.path, "liveness").toBe("/livez");
      expect(c.readinessProbe?.httpGet?.path, "readiness").toBe("/readyz");
      for (const probe of [c.startupProbe, c.livenessProbe, c.readinessProbe]) {
        expect(resolvePort(c, probe?.httpGet?.port), "probe port").toBe(healthPort);
        expect(WORKER_PROBE_ROUTES).toContain(probe?.httpGet?.path);
      }
      // The health server starts after the workflow bundle is built and schedules reconciled.
      const budget =
        (c.startupProbe?.periodSeconds ?? 10) * (c.startupProbe?.failureThreshold ?? 3);
      expect(budget, "startupProbe period x failureThreshold (s)").toBeGreaterThanOrEqual(60);
    });

    it("exposes the SDK metrics port", () => {
      expect(metricsPort, "ConfigMap WORKER_METRICS_PORT").toBeDefined();
      expect(container().ports?.map((p) => p.containerPort)).toContain(metricsPort);
    });

    it("outlasts WORKER_SHUTDOWN_GRACE_MS before Kubernetes kills it", () => {
      expect(
        deployment().pod.terminationGracePeriodSeconds,
        `terminationGracePeriodSeconds vs WORKER_SHUTDOWN_GRACE_MS (${graceS} s) + ${SHUTDOWN_HEADROOM_S} s`,
      ).toBeGreaterThanOrEqual(graceS + SHUTDOWN_HEADROOM_S);
    });

    it("has a PodDisruptionBudget and a CPU autoscaler that owns its replica count", () => {
      const { object, podLabels } = deployment();
      const pdbs = resources.filter(
        (m) =>
          m.object.kind === "PodDisruptionBudget" &&
          selects(m.object.spec?.selector?.matchLabels, podLabels),
      );
      expect(pdbs.length, "PodDisruptionBudget selecting its pods").toBe(1);
      const hpas = resources.filter(
        (m) =>
          m.object.kind === "HorizontalPodAutoscaler" &&
          !m.file.includes("/optional/") &&
          m.object.spec?.scaleTargetRef?.name === object.metadata.name,
      );
      const hpa = only(hpas, `HorizontalPodAutoscaler of ${object.metadata.name}`);
      expect(hpa.object.apiVersion).toBe("autoscaling/v2");
      expect(
        ((hpa.object.spec?.metrics ?? []) as { resource?: { name: string } }[]).map(
          (m) => m.resource?.name,
        ),
      ).toContain("cpu");
      expect(
        object.spec?.replicas,
        "spec.replicas would reset the autoscaler's count on every apply",
      ).toBeUndefined();
    });

    it("has an optional KEDA ScaledObject on its task queue", () => {
      const scaled = only(
        resources.filter(
          (m) =>
            m.object.kind === "ScaledObject" &&
            m.object.spec?.scaleTargetRef?.name === deployment().object.metadata.name,
        ),
        `ScaledObject of ${type}`,
      );
      expect(scaled.file, "kept out of the main kustomization").toContain("/optional/");
      const trigger = (
        (scaled.object.spec?.triggers ?? []) as { type: string; metadata: Env }[]
      )[0];
      expect(trigger?.type).toBe("temporal");
      expect(trigger?.metadata.taskQueue, "the worker's task queue").toBe(
        taskQueueFor(type, k8sConfig),
      );
      expect(trigger?.metadata.namespace, "TEMPORAL_NAMESPACE").toBe(k8sConfig.temporal.namespace);
      expect(trigger?.metadata.endpointFromEnv ?? "", "Temporal endpoint").toBe("TEMPORAL_ADDRESS");
    });
  });

  it("the KEDA overlay removes every CPU autoscaler it replaces", () => {
    const overlay = only(
      kustomizations.filter((k) => k.file.includes("/optional/")),
      "optional/kustomization.yaml",
    ).object as { patches?: { patch: string }[] };
    const deleted = (overlay.patches ?? [])
      .map((p) => parseAllDocuments(p.patch))
      .flatMap((docs) => (Array.isArray(docs) ? docs : []))
      .map((doc) => doc.toJS() as K8sObject & { $patch?: string })
      .filter((patch) => patch.$patch === "delete" && patch.kind === "HorizontalPodAutoscaler")
      .map((patch) => patch.metadata.name)
      .sort();
    const hpas = resources
      .filter((m) => m.object.kind === "HorizontalPodAutoscaler")
      .map((m) => m.object.metadata.name)
      .sort();
    expect(deleted).toEqual(hpas);
  });

  it("runs the API alone, reading the admin token from the Secret, probed on its http port", () => {
    const api = only(workloadRunning("npm run api"), 'workload running "npm run api"');
    const c = api.pod.containers.find((x) => containerCommand(x) === "npm run api") as Container;
    expect(c.env?.find((e) => e.name === "SCHEDULER_ENABLED")?.value).toBe("false");
    expect(c.env?.find((e) => e.name === "ADMIN_API_TOKEN")?.valueFrom?.secretKeyRef?.key).toBe(
      "ADMIN_API_TOKEN",
    );
    const port = Number(c.env?.find((e) => e.name === "PORT")?.value ?? k8sConfig.port);
    expect(c.livenessProbe?.httpGet?.path, "liveness").toBe("/livez");
    expect(c.readinessProbe?.httpGet?.path, "readiness").toBe("/readyz");
    for (const probe of [c.startupProbe, c.livenessProbe, c.readinessProbe]) {
      if (!probe) continue;
      expect(resolvePort(c, probe.httpGet?.port), "probe port is PORT").toBe(port);
      expect(API_PROBE_ROUTES).toContain(probe.httpGet?.path);
    }
    const service = only(
      resources.filter(
        (m) => m.object.kind === "Service" && selects(m.object.spec?.selector, api.podLabels),
      ),
      "Service of the API",
    );
    for (const p of (service.object.spec?.ports ?? []) as { targetPort: number | string }[]) {
      expect(resolvePort(c, p.targetPort), "Service targetPort").toBe(port);
    }
  });

  it("runs the migration as a Job with the database URL only", () => {
    const job = only(
      workloadRunning("npm run db:migrate"),
      'workload running "npm run db:migrate"',
    );
    expect(job.object.kind).toBe("Job");
    expect(job.pod.containers.flatMap((c) => c.env ?? []).map((e) => e.name)).toEqual([
      "DATABASE_URL",
    ]);
  });
});

describe("deployed entry points", () => {
  it("import only production dependencies (the image has no others)", () => {
    const pkg = JSON.parse(readText("package.json")) as { dependencies: Record<string, string> };
    for (const file of [...new Set(deployedEntryPoints().flatMap(sourceClosure))]) {
      // Type-only imports are erased by tsx; node: built-ins need no package.
      const source = readText(file).replace(/import\s+type\s[^;]*;/g, "");
      for (const [, specifier = ""] of source.matchAll(/\sfrom\s*["']([^."'][^"']*)["']/g)) {
        if (specifier.startsWith("node:")) continue;
        const name = specifier.startsWith("@")
          ? specifier.split("/").slice(0, 2).join("/")
          : (specifier.split("/")[0] ?? specifier);
        expect(
          pkg.dependencies[name],
          `${file} imports ${specifier}: ${name} must be a production dependency`,
        ).toBeDefined();
      }
    }
  });

  it("load their modules under tsx and Node's ESM loader, as the containers do", async () => {
    // Vitest resolves CommonJS named exports that Node's ESM loader rejects (a named import from
    // a CommonJS package), so a module can pass every test and still crash `npm run api` at
    // startup. Import every module the entry points load (not the entry points themselves,
    // which start servers; not the workflow code, which only runs bundled in the sandbox).
    const entries = deployedEntryPoints();
    const modules = [...new Set(entries.flatMap(sourceClosure))].filter(
      (file) => !entries.includes(file) && !file.startsWith("workflows/"),
    );
    const dir = await mkdtemp(join(tmpdir(), "livedash-deploy-"));
    try {
      const probe = join(dir, "load.mts");
      const imports = modules.map(
        (f) => `await import(${JSON.stringify(pathToFileURL(join(ROOT, f)).href)});`,
      );
      await writeFile(probe, `${imports.join("\n")}\n`);
      const result = await new Promise<{ code: number | null; stderr: string }>((done) => {
        execFile(
          join(ROOT, "node_modules/.bin/tsx"),
          [probe],
          { cwd: ROOT, timeout: 60_000 },
          (error, _stdout, stderr) => done({ code: error ? (error.code as number) : 0, stderr }),
        );
      });
      const firstLines = result.stderr.trim().split("\n").slice(0, 6).join("\n");
      expect(result.code, `a module of ${entries.join(", ")} fails under tsx:\n${firstLines}`).toBe(
        0,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("probe routes exist on the real processes", () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack();
  });

  afterAll(async () => {
    await stack?.close();
  });

  it("the API answers every route the probes and scrape annotations name", async () => {
    const { config, client, db } = stack;
    const app = createApp({ config, client, db, log: silentLog });
    for (const path of API_PROBE_ROUTES) {
      const response = await app.request(path);
      expect(response.status, `GET ${path} on the API`).not.toBe(404);
    }
  });

  it("the worker health server answers every route the probes name", async () => {
    const health = await startWorkerHealthServer({
      port: 0,
      workers: {
        taskQueues: [],
        status: () => ({}),
        dependencies: () => ({}),
        done: Promise.resolve(),
        shutdown: async () => undefined,
      },
      stopping: () => false,
      log: silentLog,
    });
    try {
      for (const path of WORKER_PROBE_ROUTES) {
        const response = await fetch(`http://127.0.0.1:${health.port}${path}`);
        expect(response.status, `GET ${path} on the worker health server`).not.toBe(404);
      }
    } finally {
      await health.close();
    }
  });
});
