import { dirname } from "node:path";
/**
 * Static checks of docker-compose.yml against the code it deploys: the scheduler registry
 * (WORKER_TYPES), the configuration schema (ENV_VARS, loadConfig), the compiled entry points and
 * the probe routes of the real API app and worker health server. No Docker engine is involved.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENV_VARS, loadConfig } from "../adapters/config.ts";
import { createApp } from "../api/app.ts";
import { taskQueueFor } from "../control-plane/scheduler-registry.ts";
import { WORKER_TYPES } from "../domain/scheduler-id.ts";
import { startWorkerHealthServer } from "../workers/health-server.ts";
import {
  API_COMMAND,
  API_PROBE_ROUTES,
  APP_ENV_EXTRAS,
  COMPOSE_SAMPLE_ENV,
  type ComposeService,
  commandLine,
  compose,
  composeEnv,
  composeRegionExample,
  composeServices,
  durationSeconds,
  imageRepository,
  interpolate,
  isLiveDashService,
  MIGRATE_COMMAND,
  OPTIONAL_SECRET_VARS,
  only,
  parseYaml,
  readText,
  SECRET_VARS,
  SHUTDOWN_HEADROOM_S,
  THIRD_PARTY_ENV,
  WORKER_PROBE_ROUTES,
  workerCommand,
} from "./support/deploy-files.ts";
import { silentLog, startTestStack, type TestStack } from "./support/harness.ts";

const services = compose.services;
const dependsOn = (service: ComposeService): Record<string, { condition?: string }> =>
  Array.isArray(service.depends_on)
    ? Object.fromEntries(service.depends_on.map((d) => [d, {}]))
    : (service.depends_on ?? {});
const byImage = (repository: string) =>
  composeServices.filter(([, s]) => imageRepository(s.image ?? "") === repository);
const imageTag = (image: string | undefined) => /:([^/:@]+)(?:@|$)/.exec(image ?? "")?.[1] ?? "";

describe("every scheduler type is deployed", () => {
  it.each(WORKER_TYPES)("%s has a docker compose worker service", (type) => {
    const command = workerCommand(type);
    const matching = composeServices.filter(([, s]) => commandLine(s.command) === command);
    expect(
      matching.map(([name]) => name),
      `docker-compose.yml needs one service running "${command}"`,
    ).toHaveLength(1);
  });
});

describe("docker compose environment", () => {
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
});

describe("docker compose", () => {
  it("pins third-party images and checks PostgreSQL's health on a volume", () => {
    for (const [name, service] of composeServices.filter(([, s]) => !isLiveDashService(s))) {
      expect(service.image, `service ${name} image`).toMatch(/:(?!latest\b)[\w.-]*\d/);
    }
    const postgres = composeServices.find(([, s]) => imageRepository(s.image ?? "") === "postgres");
    expect(postgres?.[1].healthcheck?.test, "postgres healthcheck").toBeDefined();
    expect(postgres?.[1].volumes?.length, "postgres data volume").toBeGreaterThan(0);
  });

  it("runs the migration once, before every LiveDash service", () => {
    const migrate = composeServices.filter(([, s]) => commandLine(s.command) === MIGRATE_COMMAND);
    const [migrateName] = only(migrate, `service running "${MIGRATE_COMMAND}"`);
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
      composeServices.filter(([, s]) => commandLine(s.command) === API_COMMAND),
      `service running "${API_COMMAND}"`,
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
      composeServices.filter(([, s]) => commandLine(s.command) === workerCommand(type)),
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
      .filter(([, s]) => commandLine(s.command).startsWith(workerCommand("")))
      .map(([, s]) => s.deploy?.replicas ?? 1);
    expect(Math.max(...replicas), "deploy.replicas of the busiest worker type").toBeGreaterThan(1);
  });

  it("health checks name probe routes that exist", () => {
    for (const [name, service] of composeServices.filter(([, s]) => isLiveDashService(s))) {
      const test = commandLine(service.healthcheck?.test);
      if (!test) continue;
      const routes =
        commandLine(service.command) === API_COMMAND ? API_PROBE_ROUTES : WORKER_PROBE_ROUTES;
      const paths = [...test.matchAll(/'(\/[^']*)'/g)].map((m) => m[1]);
      expect(paths.length, `service ${name} healthcheck requests a path`).toBeGreaterThan(0);
      for (const path of paths) expect(routes, `service ${name} healthcheck`).toContain(path);
    }
  });

  it("runs PostgreSQL 18 with its data volume where the 18 image keeps data", () => {
    const [name, postgres] = only(byImage("postgres"), "postgres service");
    expect(imageTag(postgres.image), `service ${name} image`).toMatch(/^18\./);
    // From 18 on the image stores data in /var/lib/postgresql/<major>/docker and refuses a mount
    // at /var/lib/postgresql/data.
    const targets = (postgres.volumes ?? []).map((v) => v.split(":")[1]);
    expect(targets, `service ${name} volumes`).toContain("/var/lib/postgresql");
    expect(targets).not.toContain("/var/lib/postgresql/data");
  });

  it("runs the maintained Temporal server image, its schema set up by the admin tools first", () => {
    expect(byImage("temporalio/auto-setup"), "the deprecated auto-setup image").toEqual([]);
    const [serverName, server] = only(byImage("temporalio/server"), "temporalio/server service");
    const tools = byImage("temporalio/admin-tools");
    const schema = only(
      tools.filter(([, s]) => /\bsetup-schema\b/.test(commandLine(s.command))),
      "admin-tools service running temporal-sql-tool setup-schema",
    );
    const [schemaName, schemaJob] = schema;
    const script = commandLine(schemaJob.command);
    expect(script).toContain("temporal-sql-tool");
    expect(script).toContain("--plugin postgres12");
    expect(script).toMatch(/\bupdate-schema\b/);
    for (const db of ["temporal", "temporal_visibility"]) expect(script).toContain(db);
    expect(schemaJob.restart, `service ${schemaName} is a one-shot job`).toBe("no");
    expect(dependsOn(server)[schemaName]?.condition, `service ${serverName} waits for it`).toBe(
      "service_completed_successfully",
    );
    expect(composeEnv(server).DB, `service ${serverName} DB`).toBe("postgres12");
    // Schema versions belong to the server version: the two images move together.
    for (const [name, tool] of tools) {
      expect(imageTag(tool.image).split("-")[0], `service ${name} admin-tools version`).toBe(
        imageTag(server.image),
      );
    }
  });

  it("creates the platform's Temporal namespace before any LiveDash service starts", () => {
    const [jobName, job] = only(
      byImage("temporalio/admin-tools").filter(([, s]) =>
        /namespace create/.test(commandLine(s.command)),
      ),
      "admin-tools service creating the namespace",
    );
    const namespace = loadConfig(
      Object.fromEntries(
        Object.entries(composeEnv(services.api as ComposeService)).map(([k, v]) => [
          k,
          interpolate(v, COMPOSE_SAMPLE_ENV),
        ]),
      ),
    ).temporal.namespace;
    expect(commandLine(job.command)).toContain(`--namespace ${namespace}`);
    expect(job.restart).toBe("no");
    for (const [name, service] of composeServices.filter(([, s]) => isLiveDashService(s))) {
      if (commandLine(service.command) === MIGRATE_COMMAND) continue;
      expect(dependsOn(service)[jobName]?.condition, `service ${name} waits for ${jobName}`).toBe(
        "service_completed_successfully",
      );
    }
  });

  it("limits every service's CPU and memory", () => {
    for (const [name, service] of composeServices) {
      const limits = service.deploy?.resources?.limits;
      expect(Number(limits?.cpus), `service ${name} deploy.resources.limits.cpus`).toBeGreaterThan(
        0,
      );
      expect(limits?.memory, `service ${name} deploy.resources.limits.memory`).toMatch(
        /^\d+[KMG]$/,
      );
    }
  });

  it("keeps the image's init: no shell or npm in commands, no second init", () => {
    for (const [name, service] of composeServices.filter(([, s]) => isLiveDashService(s))) {
      expect(
        service.entrypoint,
        `service ${name} keeps the image's tini entrypoint`,
      ).toBeUndefined();
      expect(service.init, `service ${name}: tini is already PID 1`).toBeUndefined();
    }
  });

  it("has a commented us/eu region example whose worker sets pass validation", () => {
    const example = Object.entries(composeRegionExample());
    expect(example.length, "services in the region example").toBeGreaterThanOrEqual(2);
    const regions = new Map<string, string>();
    for (const [name, service] of example) {
      const env = Object.fromEntries(
        Object.entries(composeEnv(service)).map(([k, v]) => [
          k,
          interpolate(v, COMPOSE_SAMPLE_ENV),
        ]),
      );
      const config = loadConfig(env);
      expect(config.region, `service ${name} REGION`).toBeDefined();
      expect(env.CSV_COMPANIES_FILTER, `service ${name}`).toBe(`region:${config.region}`);
      const type = WORKER_TYPES.find((t) => commandLine(service.command) === workerCommand(t));
      expect(type, `service ${name} runs a worker`).toBeDefined();
      regions.set(config.region ?? "", taskQueueFor(type ?? "csv-import", config));
    }
    expect([...regions.keys()].sort()).toEqual(["eu", "us"]);
    expect(new Set(regions.values()).size, "each region polls its own task queue").toBe(2);
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
      if (command.includes("db-migrate")) continue;
      const env = composeEnv(s);
      const port = command === API_COMMAND ? env.PORT : env.WORKER_METRICS_PORT;
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

describe("the probe routes compose checks exist on the real processes", () => {
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
