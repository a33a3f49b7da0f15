/**
 * Static checks of the Kubernetes manifests under deploy/k8s against the code they deploy: the
 * scheduler registry (WORKER_TYPES), the configuration schema (ENV_VARS, loadConfig) and the
 * compiled entry points. No cluster is involved.
 */
import { relative } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { ENV_VARS, loadConfig } from "../../adapters/config.ts";
import { taskQueueFor } from "../../control-plane/scheduler-registry.ts";
import { WORKER_TYPES, type WorkerType } from "../../domain/scheduler-id.ts";
import {
  API_COMMAND,
  API_PROBE_ROUTES,
  APP_ENV_EXTRAS,
  type Container,
  composeEnv,
  composeServices,
  configData,
  configMap,
  containerCommand,
  type Env,
  FORBIDDEN_VARS,
  K8S_DIR,
  type K8sObject,
  k8sConfig,
  k8sFiles,
  kustomizations,
  MIGRATE_COMMAND,
  mainKustomization,
  only,
  PLACEHOLDER,
  podContainers,
  readText,
  resolvePort,
  resources,
  SECRET_VARS,
  SHUTDOWN_HEADROOM_S,
  secret,
  selects,
  WORKER_PROBE_ROUTES,
  workerCommand,
  workloadRunning,
  workloads,
} from "../support/deploy-files.ts";

describe("every scheduler type is deployed", () => {
  it.each(WORKER_TYPES)("%s has a Kubernetes Deployment", (type) => {
    const command = workerCommand(type);
    const deployments = workloadRunning(command).filter((w) => w.object.kind === "Deployment");
    expect(
      deployments.map((w) => w.object.metadata.name),
      `deploy/k8s needs one Deployment running "${command}"`,
    ).toHaveLength(1);
  });
});

describe("Kubernetes environment", () => {
  const known = new Set<string>([...ENV_VARS, ...APP_ENV_EXTRAS]);

  it("the ConfigMap, the Secret and container env set only variables adapters/config.ts knows", () => {
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
      expect(known.has(name), `${where} sets ${name}, which adapters/config.ts does not read`).toBe(
        true,
      );
    }
  });

  it("Kubernetes configures every variable adapters/config.ts reads", () => {
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
});

describe("Kubernetes secrets", () => {
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

  it("no deployment file contains something that looks like a real credential", () => {
    const files = ["Dockerfile", "docker-compose.yml", ".dockerignore", ...k8sFiles];
    for (const file of files) {
      const text = readText(file);
      expect(text, `${file}: OpenAI key`).not.toMatch(/\bsk-[A-Za-z0-9_-]{20,}/);
      expect(text, `${file}: private key`).not.toMatch(/-----BEGIN [A-Z ]*PRIVATE KEY-----/);
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
        // Node and its libraries may write temporary files; the root filesystem is read-only.
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
        workloadRunning(workerCommand(type)).filter((w) => w.object.kind === "Deployment"),
        `Deployment of ${type}`,
      );
    const container = () =>
      deployment().pod.containers.find(
        (c) => containerCommand(c) === workerCommand(type),
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
    const api = only(workloadRunning(API_COMMAND), `workload running "${API_COMMAND}"`);
    const c = api.pod.containers.find((x) => containerCommand(x) === API_COMMAND) as Container;
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
    const job = only(workloadRunning(MIGRATE_COMMAND), `workload running "${MIGRATE_COMMAND}"`);
    expect(job.object.kind).toBe("Job");
    expect(job.pod.containers.flatMap((c) => c.env ?? []).map((e) => e.name)).toEqual([
      "DATABASE_URL",
    ]);
  });

  it("containers set args, not command, so the image's init (tini) stays PID 1", () => {
    for (const w of workloads) {
      for (const c of podContainers(w.pod)) {
        expect(
          c.command,
          `${w.file} container ${c.name}: command replaces ENTRYPOINT`,
        ).toBeUndefined();
        expect(c.args?.[0], `${w.file} container ${c.name} args`).toBe("node");
      }
    }
  });
});
