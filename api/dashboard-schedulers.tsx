import type { FC, PropsWithChildren } from "hono/jsx";
import type { RunView, SchedulerView } from "../control-plane/admin-service.ts";
import type { RunProgressView } from "../control-plane/run-progress.ts";
import { formatDuration, formatTime, relativeTime, Time } from "./dashboard-layout.tsx";

/**
 * The dashboard's scheduler table: one row per scheduler with its state, last and next run,
 * recent outcomes, success rate, a running run's progress, and the pause, resume and trigger
 * forms (posted to /admin/actions).
 */

const OUTCOME_LETTER: Record<string, string> = {
  SUCCEEDED: "S",
  PARTIAL: "P",
  FAILED: "F",
  CANCELLED: "C",
  RUNNING: "R",
};

export const SchedulerTable: FC<{ schedulers: SchedulerView[]; now: Date }> = ({
  schedulers,
  now,
}) => (
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
