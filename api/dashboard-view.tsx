import type { FC, PropsWithChildren } from "hono/jsx";
import type { RunView, SchedulerView } from "../control-plane/admin-service.ts";
import type { RunProgressView } from "../control-plane/run-progress.ts";
import { type CompanyHealthData, CompanyHealthSection } from "./dashboard-companies.tsx";
import type { PipelineCounts } from "./dashboard-data.ts";

/**
 * The operator dashboard's markup: server-rendered Hono JSX, no script, no external asset.
 * Every value is rendered as text or an attribute, which Hono escapes; nothing here builds raw
 * HTML from data.
 */

/**
 * Inline style sheet. Hono escapes the text of a style element like any other text, so it must
 * stay free of the characters HTML escaping changes (checked below).
 */
const CSS = `
:root {
  color-scheme: light dark;
  --bg: #ffffff; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --card: #f6f8fa;
  --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --off: #6e7781; --info: #0969da;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --line: #3d444d; --card: #151b23;
    --ok: #238636; --warn: #9e6a03; --bad: #da3633; --off: #656c76; --info: #1f6feb;
  }
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, Segoe UI, Roboto, sans-serif;
}
header {
  display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center;
  justify-content: space-between; padding: 12px 16px; border-bottom: 1px solid var(--line);
}
header .meta { display: flex; flex-wrap: wrap; gap: 8px 12px; align-items: center; }
main { padding: 0 16px 32px; max-width: 1500px; margin: 0 auto; }
h1 { font-size: 18px; margin: 0; }
h2 { font-size: 16px; margin: 24px 0 8px; }
a { color: var(--info); }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.muted { color: var(--muted); font-size: 12px; }
.wrap { overflow-wrap: anywhere; min-width: 0; }
.flash { margin: 16px 0 0; padding: 8px 12px; border-radius: 6px; border: 1px solid var(--line); }
.flash.ok { border-color: var(--ok); }
.flash.error { border-color: var(--bad); }
.banner { margin: 16px 0 0; padding: 8px 12px; border-radius: 6px; border: 1px solid var(--warn); }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; vertical-align: top; padding: 8px; border-bottom: 1px solid var(--line); }
th { font-size: 12px; color: var(--muted); font-weight: 600; white-space: nowrap; }
.badge {
  display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px;
  font-weight: 600; color: #ffffff; background: var(--off); white-space: nowrap;
}
.dot {
  width: 18px; height: 18px; border-radius: 4px; color: #ffffff; font-size: 11px;
  font-weight: 700; display: flex; align-items: center; justify-content: center;
  background: var(--off);
}
.s-RUNNING, .o-SUCCEEDED { background: var(--ok); }
.s-PAUSED, .o-PARTIAL { background: var(--warn); }
.s-ERROR, .o-FAILED { background: var(--bad); }
.s-STARTING, .o-RUNNING { background: var(--info); }
.recent { display: flex; gap: 4px; list-style: none; margin: 0; padding: 0; }
.actions { display: flex; flex-direction: column; gap: 6px; min-width: 14em; }
.actions form { display: flex; flex-wrap: wrap; gap: 6px; margin: 0; }
.actions input[type=text] { flex: 1 1 8em; min-width: 0; }
input, button {
  font: inherit; padding: 4px 10px; border-radius: 6px; border: 1px solid var(--line);
  background: var(--bg); color: var(--fg);
}
button { cursor: pointer; background: var(--card); font-weight: 600; }
button.primary { background: var(--info); border-color: var(--info); color: #ffffff; }
.counts { display: grid; grid-template-columns: repeat(auto-fit, minmax(15em, 1fr)); gap: 12px; }
.counts section { border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; background: var(--card); }
.counts h3 { font-size: 13px; margin: 0 0 4px; }
.counts dl { display: grid; grid-template-columns: 1fr auto; gap: 2px 12px; margin: 0; }
.counts dt { color: var(--muted); overflow-wrap: anywhere; }
.counts dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; }
.sr {
  position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
  white-space: nowrap;
}
.login { max-width: 24em; margin: 48px auto; padding: 16px; }
.login form { display: flex; flex-direction: column; gap: 8px; }
@media (max-width: 700px) {
  table.schedulers, table.schedulers tbody, table.schedulers tr, table.schedulers td { display: block; width: 100%; }
  table.schedulers thead { display: none; }
  table.schedulers tr {
    border: 1px solid var(--line); border-radius: 8px; margin: 0 0 12px; padding: 4px 12px;
    background: var(--card);
  }
  table.schedulers td {
    display: grid; grid-template-columns: 7em minmax(0, 1fr); gap: 8px; padding: 6px 0;
    border: 0;
  }
  table.schedulers td::before {
    content: attr(data-label); color: var(--muted); font-size: 12px; font-weight: 600;
  }
  .actions { min-width: 0; }
}
`;
if (/[<>&'"]/.test(CSS)) throw new Error("dashboard CSS must not contain < > & ' or \"");

const OUTCOME_LETTER: Record<string, string> = {
  SUCCEEDED: "S",
  PARTIAL: "P",
  FAILED: "F",
  CANCELLED: "C",
  RUNNING: "R",
};

/** 2026-11-28 10:30:00 UTC */
export function formatTime(iso: string): string {
  return `${iso.slice(0, 19).replace("T", " ")} UTC`;
}

export function formatDuration(ms: number | null): string {
  if (ms === null) return "–";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return minutes < 60 ? `${minutes} min ${seconds} s` : `${(ms / 3_600_000).toFixed(1)} h`;
}

/** "5 min ago", "in 3 h" */
export function relativeTime(iso: string, now: Date): string {
  const diff = new Date(iso).getTime() - now.getTime();
  const abs = Math.abs(diff);
  if (abs < 5_000) return "just now";
  const text =
    abs < 60_000
      ? `${Math.round(abs / 1000)} s`
      : abs < 3_600_000
        ? `${Math.round(abs / 60_000)} min`
        : abs < 172_800_000
          ? `${Math.round(abs / 3_600_000)} h`
          : `${Math.round(abs / 86_400_000)} d`;
  return diff < 0 ? `${text} ago` : `in ${text}`;
}

const Time: FC<{ iso: string; now: Date }> = ({ iso, now }) => (
  <time datetime={iso} title={formatTime(iso)}>
    {formatTime(iso)} <span class="muted">({relativeTime(iso, now)})</span>
  </time>
);

export const Layout: FC<PropsWithChildren<{ title: string; nonce: string }>> = (props) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="referrer" content="same-origin" />
      <title>{props.title}</title>
      <style nonce={props.nonce}>{CSS}</style>
    </head>
    <body>{props.children}</body>
  </html>
);

export const LoginPage: FC<{ nonce: string; error?: string | undefined }> = ({ nonce, error }) => (
  <Layout title="Sign in · LiveDash schedulers" nonce={nonce}>
    <main class="login">
      <h1>LiveDash schedulers</h1>
      <p class="muted">Sign in with the admin token (ADMIN_API_TOKEN).</p>
      {error ? (
        <p class="flash error" role="alert">
          {error}
        </p>
      ) : null}
      <form method="post" action="/admin/login">
        <label for="token">Admin token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="current-password"
          required
          autofocus
        />
        <button class="primary" type="submit">
          Sign in
        </button>
      </form>
    </main>
  </Layout>
);

export const MessagePage: FC<{ nonce: string; title: string; message: string }> = (props) => (
  <Layout title={`${props.title} · LiveDash schedulers`} nonce={props.nonce}>
    <main class="login">
      <h1>{props.title}</h1>
      <p role="alert">{props.message}</p>
      <p>
        <a href="/admin">Back to the dashboard</a>
      </p>
    </main>
  </Layout>
);

export interface Flash {
  kind: "ok" | "error";
  message: string;
}

export interface DashboardProps {
  nonce: string;
  now: Date;
  schedulers: SchedulerView[] | { error: string };
  counts: PipelineCounts | { error: string };
  /** Per-company CSV import health (absent: not shown). */
  companies?: CompanyHealthData | { error: string };
  flash: Flash | undefined;
  /** A token is configured: offer to sign out. */
  authenticated: boolean;
  insecure: boolean;
}

export const DashboardPage: FC<DashboardProps> = (props) => (
  <Layout title="LiveDash schedulers" nonce={props.nonce}>
    <header>
      <h1>LiveDash schedulers</h1>
      <div class="meta">
        <span class="muted">
          Updated <Time iso={props.now.toISOString()} now={props.now} />
        </span>
        <a href="/admin">Refresh</a>
        {props.authenticated ? (
          <form method="post" action="/admin/logout">
            <button type="submit">Sign out</button>
          </form>
        ) : null}
      </div>
    </header>
    <main>
      {props.insecure ? (
        <p class="banner" role="note">
          Insecure development mode: no admin token is configured, so this dashboard and its actions
          are open to anyone who can reach it.
        </p>
      ) : null}
      {props.flash ? (
        <p
          class={`flash ${props.flash.kind}`}
          role={props.flash.kind === "error" ? "alert" : "status"}
        >
          {props.flash.message}
        </p>
      ) : null}
      <h2 id="schedulers">Schedulers</h2>
      {"error" in props.schedulers ? (
        <p class="flash error" role="alert">
          Could not load the schedulers: {props.schedulers.error}
        </p>
      ) : (
        <SchedulerTable schedulers={props.schedulers} now={props.now} />
      )}
      <h2 id="pipeline">Pipeline</h2>
      {"error" in props.counts ? (
        <p class="flash error" role="alert">
          Could not load the pipeline counts: {props.counts.error}
        </p>
      ) : (
        <Counts counts={props.counts} />
      )}
      {props.companies ? (
        <>
          <h2 id="companies">Company imports</h2>
          <CompanyHealthSection data={props.companies} now={props.now} />
        </>
      ) : null}
    </main>
  </Layout>
);

const SchedulerTable: FC<{ schedulers: SchedulerView[]; now: Date }> = ({ schedulers, now }) => (
  <table class="schedulers">
    <thead>
      <tr>
        <th scope="col">Scheduler</th>
        <th scope="col">State</th>
        <th scope="col">Last run</th>
        <th scope="col">Next run</th>
        <th scope="col">Recent</th>
        <th scope="col">Success rate</th>
        <th scope="col">Actions</th>
      </tr>
    </thead>
    <tbody>
      {schedulers.map((s) => (
        <SchedulerRow scheduler={s} now={now} />
      ))}
    </tbody>
  </table>
);

const Cell: FC<PropsWithChildren<{ label: string }>> = ({ label, children }) => (
  <td data-label={label}>
    <div class="wrap">{children}</div>
  </td>
);

const SchedulerRow: FC<{ scheduler: SchedulerView; now: Date }> = ({ scheduler: s, now }) => {
  const last = s.lastRuns[0];
  return (
    <tr id={`scheduler-${s.id}`} data-scheduler={s.id} data-state={s.state}>
      <Cell label="Scheduler">
        <strong>{s.name}</strong>
        <div>
          <code>{s.id}</code>
        </div>
        <div class="muted">
          <span class="mono live-spec">{s.spec.cron}</span> ({s.spec.timeZone}) ·{" "}
          {s.drift.includes("spec") ? (
            <span class="badge drift" title="The next reconcile puts the configured spec back">
              edited in Temporal; configured <span class="mono">{s.configuredSpec.cron}</span>
            </span>
          ) : null}{" "}
          <a
            href={s.temporalUiUrl}
            target="_blank"
            rel="noopener noreferrer"
            aria-label={`Open schedule ${s.scheduleId} in the Temporal UI`}
          >
            Temporal UI
          </a>
        </div>
      </Cell>
      <Cell label="State">
        <span class={`badge state s-${s.state}`}>{s.state}</span>
        {s.pause.paused ? <PauseNote pause={s.pause} now={now} /> : null}
        {!s.pause.paused && s.reason ? <div class="muted">{s.reason}</div> : null}
      </Cell>
      <Cell label="Last run">
        {last ? <LastRun run={last} now={now} /> : <span class="muted">no run yet</span>}
      </Cell>
      <Cell label="Next run">
        {s.nextRuns[0] ? (
          <Time iso={s.nextRuns[0]} now={now} />
        ) : (
          <span class="muted">{s.pause.paused ? "none while paused" : "none scheduled"}</span>
        )}
      </Cell>
      <Cell label="Recent">
        {s.lastRuns.length > 0 ? (
          <ol class="recent" aria-label="Recent outcomes, newest first">
            {s.lastRuns.map((run) => (
              <li
                class={`dot o-${run.outcome}`}
                title={`${run.outcome} · ${formatTime(run.startedAt)} · ${formatDuration(run.durationMs)}`}
              >
                <span aria-hidden="true">{OUTCOME_LETTER[run.outcome] ?? "?"}</span>
                <span class="sr">{run.outcome}</span>
              </li>
            ))}
          </ol>
        ) : (
          <span class="muted">–</span>
        )}
      </Cell>
      <Cell label="Success rate">
        {s.metrics.successRate === null ? (
          <span class="muted">–</span>
        ) : (
          <span>
            {Math.round(s.metrics.successRate * 100)} %{" "}
            <span class="muted">
              of {s.metrics.runs} run{s.metrics.runs === 1 ? "" : "s"}
            </span>
          </span>
        )}
      </Cell>
      <Cell label="Actions">
        <Actions scheduler={s} />
      </Cell>
    </tr>
  );
};

const PauseNote: FC<{ pause: SchedulerView["pause"]; now: Date }> = ({ pause, now }) => (
  <div class="pause-note">
    {pause.note ? <q>{pause.note}</q> : <span class="muted">no note</span>}
    <div class="muted">
      paused by {pause.by ?? "unknown"}
      {pause.at ? (
        <>
          {" "}
          at <Time iso={pause.at} now={now} />
        </>
      ) : null}
    </div>
  </div>
);

const LastRun: FC<{ run: RunView; now: Date }> = ({ run, now }) => (
  <div>
    <span class={`badge o-${run.outcome}`}>{run.outcome}</span>{" "}
    <span>{run.finishedAt ? formatDuration(run.durationMs) : "running"}</span>
    <div class="muted">
      <Time iso={run.startedAt} now={now} />
    </div>
    {run.progress ? <Progress progress={run.progress} now={now} /> : null}
    {run.error ? <div class="muted">{truncate(run.error, 200)}</div> : null}
  </div>
);

const count = (n: number) => n.toLocaleString("en-US");

/** A running run's progress: what is done out of what, and how fresh that is. */
export function progressSummary(progress: RunProgressView): string {
  const parts: string[] = [];
  if (progress.companies) {
    const { done, total } = progress.companies;
    parts.push(`${count(done)}${total === null ? "" : ` of ${count(total)}`} companies`);
  } else if (progress.items) {
    parts.push(`${count(progress.items.done)} of ${count(progress.items.taken)} items done`);
  }
  if (progress.rowsRead !== null) parts.push(`${count(progress.rowsRead)} rows read`);
  parts.push(`${count(progress.inFlight.count)} in flight`);
  return parts.join(" · ");
}

const Progress: FC<{ progress: RunProgressView; now: Date }> = ({ progress, now }) => (
  <div class="progress" data-source={progress.source}>
    <span class="progress-summary">{progressSummary(progress)}</span>
    <div class="muted">
      updated {relativeTime(progress.updatedAt, now)}
      {progress.source === "run-record" ? " (last hand-over; the workflow did not answer)" : ""}
    </div>
  </div>
);

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

const Hidden: FC<{ name: string; value: string }> = ({ name, value }) => (
  <input type="hidden" name={name} value={value} />
);

const Actions: FC<{ scheduler: SchedulerView }> = ({ scheduler: s }) => {
  if (s.state === "STOPPED") {
    return <span class="muted">schedule stopped (start it with the admin API)</span>;
  }
  return (
    <div class="actions">
      {s.pause.paused ? (
        <form method="post" action="/admin/actions">
          <Hidden name="action" value="resume" />
          <Hidden name="schedulerId" value={s.id} />
          <button type="submit" aria-label={`Resume ${s.id}`}>
            Resume
          </button>
        </form>
      ) : (
        <form method="post" action="/admin/actions">
          <Hidden name="action" value="pause" />
          <Hidden name="schedulerId" value={s.id} />
          <label class="sr" for={`note-${s.id}`}>
            Pause note for {s.id}
          </label>
          <input
            type="text"
            id={`note-${s.id}`}
            name="note"
            maxlength={500}
            placeholder="note (optional)"
          />
          <button type="submit" aria-label={`Pause ${s.id}`}>
            Pause
          </button>
        </form>
      )}
      <form method="post" action="/admin/actions">
        <Hidden name="action" value="trigger" />
        <Hidden name="schedulerId" value={s.id} />
        <button type="submit" aria-label={`Trigger ${s.id} now`}>
          Trigger
        </button>
      </form>
    </div>
  );
};

const Counts: FC<{ counts: PipelineCounts }> = ({ counts }) => {
  const inFlight = Object.entries(counts.batchesInFlight);
  const totalInFlight = inFlight.reduce((sum, [, n]) => sum + n, 0);
  return (
    <div class="counts">
      <CountBox
        title="CSV imports"
        rows={[
          ["waiting", counts.imports.PENDING],
          ["processed", counts.imports.PROCESSED],
          ["failed", counts.imports.FAILED],
        ]}
      />
      <CountBox
        title="Sessions by AI analysis"
        rows={Object.entries(counts.analysis).map(([status, n]) => [status.toLowerCase(), n])}
      />
      <CountBox
        title="AI requests"
        rows={Object.entries(counts.requests).map(([status, n]) => [status.toLowerCase(), n])}
      />
      <CountBox
        title="OpenAI batches in flight"
        rows={[
          ["total", totalInFlight],
          ...inFlight.map(([status, n]): [string, number] => [status.toLowerCase(), n]),
        ]}
      />
    </div>
  );
};

const CountBox: FC<{ title: string; rows: [string, number][] }> = ({ title, rows }) => (
  <section aria-label={title}>
    <h3>{title}</h3>
    <dl>
      {rows.map(([label, n]) => (
        <>
          <dt>{label.replaceAll("_", " ")}</dt>
          <dd>{n}</dd>
        </>
      ))}
    </dl>
  </section>
);
