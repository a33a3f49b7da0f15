/**
 * The deployment files (Dockerfile, .dockerignore, docker-compose.yml, deploy/k8s) parsed for the
 * static checks in test/deploy-manifests-*.test.ts, plus the code facts they are checked against:
 * package.json's scripts, tsconfig.build.json (what `npm run build` compiles into dist/) and the
 * sources each deployed entry point loads. No Docker engine or cluster is involved.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { loadConfig } from "../../adapters/config.ts";

export type Env = Record<string, string>;

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const K8S_DIR = "deploy/k8s";

/** Routes of the API process (api/app.ts) that probes and the Prometheus annotation may name. */
export const API_PROBE_ROUTES = ["/livez", "/readyz", "/metrics"];
/** Routes of the worker health server (workers/health-server.ts). */
export const WORKER_PROBE_ROUTES = ["/livez", "/readyz"];

/** The platform's secrets: only ever in the Secret (k8s) or interpolated from .env (compose). */
export const SECRET_VARS = [
  "DATABASE_URL",
  "OPENAI_API_KEY",
  "ADMIN_API_TOKEN",
  "ALERT_WEBHOOK_URL",
];
/** Secrets the platform runs without: compose leaves them empty unless .env sets them. */
export const OPTIONAL_SECRET_VARS = ["OPENAI_API_KEY", "ALERT_WEBHOOK_URL"];
/** What every value of the committed Secret template must contain. */
export const PLACEHOLDER = "REPLACE_ME";

/**
 * Variables the LiveDash containers may set although adapters/config.ts does not read them. Anything
 * else must be an ENV_VARS entry, so a typo (CSV_IMPORT_INTERVALL) or a renamed variable fails
 * here instead of being silently ignored by the process.
 * - NODE_ENV: Node libraries read it; the image sets it to production.
 */
/** Node's own variables the deployment files may set (NODE_OPTIONS: the workers' heap cap). */
export const APP_ENV_EXTRAS = ["NODE_ENV", "NODE_OPTIONS"];
/** The Dockerfile's runtime stage may set Node's own variables and glibc's arena limit. */
export const IMAGE_ENV_NAME = /^(NODE_[A-Z_]+|MALLOC_ARENA_MAX)$/;
/** Variables of the third-party images in docker-compose.yml, on those services only. */
export const THIRD_PARTY_ENV: Record<string, string[]> = {
  postgres: ["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"],
  "temporalio/server": ["DB", "DB_PORT", "POSTGRES_SEEDS", "POSTGRES_USER", "POSTGRES_PWD"],
  // temporal-sql-tool reads SQL_PASSWORD; the temporal CLI reads TEMPORAL_ADDRESS.
  "temporalio/admin-tools": ["SQL_PASSWORD", "TEMPORAL_ADDRESS"],
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
export const FORBIDDEN_VARS = ["ADMIN_API_INSECURE"];

/** Values for docker compose's ${VAR:?...} interpolations, to read compose's environment. */
export const COMPOSE_SAMPLE_ENV: Record<string, string> = {
  POSTGRES_PASSWORD: "compose-test-password",
  ADMIN_API_TOKEN: "compose-test-admin-token-0123456789",
  GRAFANA_ADMIN_PASSWORD: "compose-test-grafana-password",
};

/**
 * After SIGTERM a worker gives in-flight activities WORKER_SHUTDOWN_GRACE_MS, then closes its
 * Temporal connection and database pool: the orchestrator must wait at least this much longer.
 */
export const SHUTDOWN_HEADROOM_S = 5;

// --- File loading ------------------------------------------------------------------------------

export function readText(path: string): string {
  return readFileSync(join(ROOT, path), "utf8");
}

/** Every document of a YAML file as plain data, with `<<` merge keys resolved like compose. */
export function parseYaml(path: string): unknown[] {
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

export function yamlFilesUnder(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return yamlFilesUnder(path);
    return /\.ya?ml$/.test(entry.name) ? [path] : [];
  });
}

export const packageScripts = (
  JSON.parse(readText("package.json")) as { scripts: Record<string, string> }
).scripts;

// --- docker-compose.yml ------------------------------------------------------------------------

export interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: Record<string, { condition?: string }> | string[];
  ports?: string[];
  healthcheck?: { test?: string[] | string };
  stop_grace_period?: string;
  restart?: string;
  deploy?: {
    replicas?: number;
    resources?: { limits?: { cpus?: string | number; memory?: string } };
  };
  volumes?: string[];
  entrypoint?: string[] | string;
  init?: boolean;
}

export const compose = parseYaml("docker-compose.yml")[0] as {
  services: Record<string, ComposeService>;
};

/**
 * docker-compose.yml with its commented region example uncommented: the services of the
 * `# --- Regions (example)` block, resolved against the file's anchors as compose would.
 */
export function composeRegionExample(): Record<string, ComposeService> {
  const lines = readText("docker-compose.yml").split("\n");
  const marker = lines.findIndex((line) => line.includes("# --- Regions (example)"));
  // The example's YAML starts at its first commented service key; the prose above it stays.
  const start = lines.findIndex((line, index) => index > marker && /^ {2}# [\w-]+:\s*$/.test(line));
  if (marker < 0 || start < 0) throw new Error("docker-compose.yml has no region example");
  const uncommented = lines.map((line, index) => {
    const match = index >= start ? /^ {2}#(?: (.*))?$/.exec(line) : null;
    return match ? `  ${match[1] ?? ""}` : line;
  });
  const documents = parseAllDocuments(uncommented.join("\n"), { merge: true });
  const document = Array.isArray(documents) ? documents[0] : undefined;
  const all = (document?.toJS() ?? {}) as { services: Record<string, ComposeService> };
  return Object.fromEntries(
    Object.entries(all.services).filter(([name]) => !(name in compose.services)),
  );
}
export const composeServices = Object.entries(compose.services);

export function composeEnv(service: ComposeService): Record<string, string> {
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

export function commandLine(command: string[] | string | undefined): string {
  return Array.isArray(command) ? command.join(" ") : (command ?? "");
}

/** Services built from this repository's Dockerfile, as opposed to PostgreSQL and Temporal. */
export function isLiveDashService(service: ComposeService): boolean {
  return service.build !== undefined || (service.image ?? "").startsWith("livedash-scheduler");
}

export function imageRepository(image: string): string {
  return image.replace(/@sha256:[0-9a-f]+$/, "").replace(/:[^/:]+$/, "");
}

/**
 * Resolves compose's ${VAR}, ${VAR:-default} and ${VAR:?message} against `env`; a required or
 * bare variable missing from `env` throws.
 */
export function interpolate(value: string, env: Record<string, string>): string {
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

export function durationSeconds(value: string): number {
  let total = 0;
  for (const [, amount, unit] of value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    const factor = { ms: 0.001, s: 1, m: 60, h: 3600 }[unit as "ms" | "s" | "m" | "h"];
    total += Number(amount) * factor;
  }
  return total;
}

// --- Kubernetes manifests ----------------------------------------------------------------------

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string };
    configMapKeyRef?: { name: string; key: string };
    fieldRef?: { fieldPath: string };
  };
}

export interface Probe {
  httpGet?: { path: string; port: number | string };
  periodSeconds?: number;
  failureThreshold?: number;
}

export interface Container {
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

export interface PodSpec {
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

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  // biome-ignore lint/suspicious/noExplicitAny: each kind's spec is narrowed where it is read
  spec?: any;
}

export interface Workload {
  object: K8sObject;
  file: string;
  pod: PodSpec;
  podLabels: Record<string, string>;
}

export interface Manifest {
  file: string;
  object: K8sObject;
}

export const k8sFiles = yamlFilesUnder(K8S_DIR);
export const manifests: Manifest[] = k8sFiles.flatMap((file) =>
  parseYaml(file).map((object) => ({ file, object: object as K8sObject })),
);
export const kustomizations = manifests.filter((m) => m.object.kind === "Kustomization");
export const resources = manifests.filter((m) => m.object.kind !== "Kustomization");
export const mainKustomization = kustomizations.find(
  (m) => m.file === `${K8S_DIR}/kustomization.yaml`,
);

export function only<T>(items: T[], what: string): T {
  if (items.length !== 1) throw new Error(`expected exactly one ${what}, found ${items.length}`);
  return items[0] as T;
}

export const configMap = only(
  resources.filter((m) => m.object.kind === "ConfigMap"),
  "ConfigMap under deploy/k8s",
);
export const secret = only(
  resources.filter((m) => m.object.kind === "Secret"),
  "Secret (template) under deploy/k8s",
);
export const configData = configMap.object.data ?? {};
/** The configuration the Kubernetes processes read, as adapters/config.ts parses it. */
export const k8sConfig = loadConfig(configData);

export const workloads: Workload[] = resources.flatMap(({ file, object }) => {
  if (!["Deployment", "StatefulSet", "DaemonSet", "Job"].includes(object.kind)) return [];
  const template = object.spec?.template as
    | { metadata?: { labels?: Record<string, string> }; spec: PodSpec }
    | undefined;
  if (!template) throw new Error(`${file}: ${object.kind} ${object.metadata.name} has no template`);
  return [{ object, file, pod: template.spec, podLabels: template.metadata?.labels ?? {} }];
});

export function podContainers(pod: PodSpec): Container[] {
  return [...(pod.initContainers ?? []), ...pod.containers];
}

export function containerCommand(container: Container): string {
  return [...(container.command ?? []), ...(container.args ?? [])].join(" ");
}

export function workloadRunning(command: string): Workload[] {
  return workloads.filter((w) => w.pod.containers.some((c) => containerCommand(c) === command));
}

export function resolvePort(
  container: Container,
  port: number | string | undefined,
): number | undefined {
  if (typeof port === "number") return port;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

export function selects(
  selector: Record<string, string> | undefined,
  labels: Record<string, string>,
) {
  return (
    selector !== undefined &&
    Object.keys(selector).length > 0 &&
    Object.entries(selector).every(([key, value]) => labels[key] === value)
  );
}

// --- Dockerfile --------------------------------------------------------------------------------

export interface DockerStage {
  name: string | undefined;
  from: string;
  instructions: { keyword: string; args: string }[];
}

/** Stages and instructions; comment lines dropped and `\` continuations joined, as Docker does. */
export function parseDockerfile(text: string): {
  args: Record<string, string>;
  stages: DockerStage[];
} {
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
export function envPairs(args: string): [string, string][] {
  return args.split(/\s+/).map((pair) => {
    const at = pair.indexOf("=");
    return [pair.slice(0, at), pair.slice(at + 1).replace(/^"|"$/g, "")];
  });
}

/** A COPY instruction's sources (relative to the build context, or the --from stage) and flags. */
export function copySources(args: string): { from: string | undefined; sources: string[] } {
  const tokens = args.split(/\s+/);
  const from = tokens.find((t) => t.startsWith("--from="))?.slice("--from=".length);
  const paths = tokens.filter((t) => !t.startsWith("--"));
  return {
    from,
    sources: paths.slice(0, -1).map((p) => p.replace(/^\.\//, "").replace(/\/$/, "")),
  };
}

export const dockerfile = parseDockerfile(readText("Dockerfile"));
export const runtimeStage = dockerfile.stages.at(-1) as DockerStage;
export const runtimeCopies = runtimeStage.instructions
  .filter((i) => i.keyword === "COPY")
  .map((i) => copySources(i.args));
export const runtimeEnv = Object.fromEntries(
  runtimeStage.instructions.filter((i) => i.keyword === "ENV").flatMap((i) => envPairs(i.args)),
);

// --- npm scripts and the sources they run ------------------------------------------------------

/** `node dist/<path>.js [args]`: the compiled entry point a deployed command runs. */
export function compiledEntry(command: string): { source: string; args: string[] } | undefined {
  const [node, script, ...args] = command.split(/\s+/);
  const match = /^dist\/(.+)\.js$/.exec(script ?? "");
  if (node !== "node" || !match) return undefined;
  return { source: `${match[1]}.ts`, args };
}

export const API_COMMAND = "node dist/api/main.js";
export const MIGRATE_COMMAND = "node dist/scripts/db-migrate.js deploy";
export const workerCommand = (type: string) => `node dist/workers/main.js --scheduler=${type}`;

/** Every command line a deployment file runs, with where it comes from. */
export const deployCommands: { where: string; command: string }[] = [
  ...composeServices
    .filter(([, service]) => isLiveDashService(service) && service.command !== undefined)
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
    .filter((i) => i.keyword === "CMD")
    .map((i) => ({
      where: `Dockerfile ${i.keyword}`,
      command: i.args.startsWith("[") ? (JSON.parse(i.args) as string[]).join(" ") : i.args,
    })),
];

export const RELATIVE_IMPORT = [
  /(?:import|export)\s[^;]*?\sfrom\s*["'](\.{1,2}\/[^"']+)["']/g,
  /import\s*["'](\.{1,2}\/[^"']+)["']/g,
  /import\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g,
  // Files loaded by path, e.g. the workflow code the worker bundles (workers/runtime.ts).
  /new URL\(\s*["'](\.{1,2}\/[^"']+)["']\s*,\s*import\.meta\.url/g,
];

/** Every project file an entry point loads, following relative imports (generated code aside). */
export function sourceClosure(entry: string): string[] {
  const seen = new Set<string>();
  const queue = [entry];
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    const source = readText(file);
    for (const pattern of RELATIVE_IMPORT) {
      for (const [, specifier = ""] of source.matchAll(pattern)) {
        const target = relative(ROOT, resolve(ROOT, dirname(file), specifier));
        if (target.startsWith("adapters/db/generated/")) continue;
        if (!existsSync(join(ROOT, target))) {
          throw new Error(`${file} imports ${specifier}, which does not exist`);
        }
        queue.push(target);
      }
    }
  }
  return [...seen].sort();
}

/** The TypeScript sources whose compiled form the deployment files run (api/main.ts, ...). */
export function deployedEntryPoints(): string[] {
  const entries = new Set<string>();
  for (const { where, command } of deployCommands) {
    const entry = compiledEntry(command);
    if (!entry) throw new Error(`${where}: "${command}" should run \`node dist/<entry>.js\``);
    entries.add(entry.source);
  }
  return [...entries].sort();
}

/** What `npm run build` compiles (tsconfig.build.json's include: folders and files). */
export const buildIncludes = (JSON.parse(readText("tsconfig.build.json")) as { include: string[] })
  .include;

export function compiledByBuild(file: string): boolean {
  return buildIncludes.some((entry) => file === entry || file.startsWith(`${entry}/`));
}
