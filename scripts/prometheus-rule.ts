/**
 * Writes deploy/prometheus/prometheus-rule.yaml, the Prometheus Operator's PrometheusRule, from
 * deploy/prometheus/rules.yml, the one source of the alert rules:
 *
 *   npm run prometheus:rule
 *
 * test/unit/prometheus-rules.test.ts fails when the committed file differs from what this writes.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const RULES_FILE = resolve(ROOT, "deploy/prometheus/rules.yml");
export const PROMETHEUS_RULE_FILE = resolve(ROOT, "deploy/prometheus/prometheus-rule.yaml");

const HEADER = `# Generated from deploy/prometheus/rules.yml by \`npm run prometheus:rule\`: edit that file.
# The Prometheus Operator loads it when its ruleSelector matches these labels (kube-prometheus-stack
# selects release: <its release name> by default: adjust the label to yours).
`;

export function prometheusRuleFrom(rulesYaml: string): string {
  const rules = parse(rulesYaml) as { groups: unknown[] };
  const resource = {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "PrometheusRule",
    metadata: {
      name: "livedash",
      namespace: "livedash",
      labels: {
        "app.kubernetes.io/name": "livedash",
        "app.kubernetes.io/part-of": "livedash",
        release: "prometheus",
      },
    },
    spec: { groups: rules.groups },
  };
  return HEADER + stringify(resource, { lineWidth: 0 });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFileSync(PROMETHEUS_RULE_FILE, prometheusRuleFrom(readFileSync(RULES_FILE, "utf8")));
  console.log(`wrote ${PROMETHEUS_RULE_FILE}`);
}
