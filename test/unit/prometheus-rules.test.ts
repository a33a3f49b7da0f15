import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  PROMETHEUS_RULE_FILE,
  prometheusRuleFrom,
  RULES_FILE,
} from "../../scripts/prometheus-rule.ts";
import { promtool } from "../support/prometheus.ts";

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
}
interface RulesFile {
  groups: { name: string; rules: Rule[] }[];
}
interface RuleTests {
  rule_files: string[];
  tests: { name: string; alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

const DIR = "deploy/prometheus";
const rulesText = readFileSync(RULES_FILE, "utf8");
const rules = parse(rulesText) as RulesFile;
const alerts = rules.groups.flatMap((g) => g.rules).map((r) => r.alert);

describe("alert rules (deploy/prometheus)", () => {
  it("are valid rules for Prometheus (promtool check rules)", async () => {
    const out = await promtool(["check", "rules", "rules.yml"], DIR);
    expect(out).toContain(`SUCCESS: ${alerts.length} rules found`);
  });

  it("cover what operators must hear about", () => {
    expect(alerts.sort()).toEqual([
      "LiveDashBacklogLagOverObjective",
      "LiveDashCompaniesFailing",
      "LiveDashRunsMissedCatchup",
      "LiveDashRunsSkippedOverlap",
      "LiveDashSchedulerError",
      "LiveDashSchedulerNoRecentSuccess",
      "LiveDashTaskQueueWithoutPollers",
    ]);
  });

  it("pass their promtool unit tests, each rule firing in one case and silent in another", async () => {
    const tests = parse(readFileSync(`${DIR}/rules.test.yml`, "utf8")) as RuleTests;
    expect(tests.rule_files).toEqual(["rules.yml"]);
    const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const alert of alerts) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${alert} has a firing case`,
      ).toBe(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${alert} has a silent case`,
      ).toBe(true);
    }
    const out = await promtool(["test", "rules", "rules.test.yml"], DIR);
    expect(out).toContain("SUCCESS");
  });

  it("ship as a PrometheusRule for the operator with the same rules", () => {
    const committed = readFileSync(PROMETHEUS_RULE_FILE, "utf8");
    const resource = parse(committed) as {
      apiVersion: string;
      kind: string;
      spec: RulesFile;
    };
    expect([resource.apiVersion, resource.kind]).toEqual([
      "monitoring.coreos.com/v1",
      "PrometheusRule",
    ]);
    expect(resource.spec.groups).toEqual(rules.groups);
    expect(committed, "regenerate with npm run prometheus:rule").toBe(
      prometheusRuleFrom(rulesText),
    );
  });
});
