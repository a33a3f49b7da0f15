import type { ScheduleDescription } from "@temporalio/client";
import { CronExpressionParser } from "cron-parser";

/**
 * The schedule spec as Temporal holds it. The server stores calendars, not the cron string a
 * schedule was created with, and an edit made in the Temporal UI or CLI changes only those: so
 * what operators see is rendered from the live calendars, and drift is found by comparing the
 * fire times Temporal computed with those of the configured cron.
 */

type Range = { start: number | string; end?: number | string; step?: number };
type Calendar = Record<string, Range[] | string | undefined>;

const MONTHS = [
  "JANUARY",
  "FEBRUARY",
  "MARCH",
  "APRIL",
  "MAY",
  "JUNE",
  "JULY",
  "AUGUST",
  "SEPTEMBER",
  "OCTOBER",
  "NOVEMBER",
  "DECEMBER",
];
const DAYS = ["SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY"];

function numeric(value: number | string, names?: string[], offset = 0): number {
  if (typeof value === "number") return value;
  const index = names?.indexOf(value.toUpperCase()) ?? -1;
  return index >= 0 ? index + offset : Number(value);
}

function field(
  ranges: Range[] | string | undefined,
  min: number,
  max: number,
  names?: string[],
  offset = 0,
): string {
  if (!Array.isArray(ranges) || ranges.length === 0) return "*";
  return ranges
    .map((range) => {
      const start = numeric(range.start, names, offset);
      const end = range.end === undefined ? start : numeric(range.end, names, offset);
      const step = range.step && range.step > 0 ? range.step : 1;
      if (start === end) return String(start);
      const span = start === min && end === max ? "*" : `${start}-${end}`;
      return step === 1 ? span : `${span}/${step}`;
    })
    .join(",");
}

/** One calendar as a cron expression (six fields when it fires on seconds other than 0). */
function calendarCron(calendar: Calendar): string {
  const second = field(calendar.second, 0, 59);
  const fields = [
    field(calendar.minute, 0, 59),
    field(calendar.hour, 0, 23),
    field(calendar.dayOfMonth, 1, 31),
    field(calendar.month, 1, 12, MONTHS, 1),
    field(calendar.dayOfWeek, 0, 6, DAYS),
  ];
  return (second === "0" ? fields : [second, ...fields]).join(" ");
}

export interface LiveSpec {
  /** Cron rendering of the live calendars (` | ` between several), or the intervals. */
  cron: string;
  timeZone: string;
}

export function liveSpec(schedule: ScheduleDescription): LiveSpec {
  const spec = schedule.spec as unknown as {
    calendars?: Calendar[];
    intervals?: { every: number | string; offset?: number | string }[];
    timezone?: string;
  };
  const parts = [
    ...(spec.calendars ?? []).map(calendarCron),
    ...(spec.intervals ?? []).map((i) => `every ${i.every}`),
  ];
  return { cron: parts.join(" | ") || "(none)", timeZone: spec.timezone ?? "UTC" };
}

/**
 * Whether the schedule fires exactly when the configured cron would: the same times over the
 * span of the next fire times Temporal computed (it lists ten), and the same time zone.
 */
export function specMatches(
  cron: string,
  timeZone: string,
  schedule: ScheduleDescription,
): boolean {
  const live = liveSpec(schedule);
  if (live.timeZone !== timeZone) return false;
  const times = schedule.info.nextActionTimes.map((t) => t.getTime());
  const first = times[0];
  const last = times.at(-1);
  if (first === undefined || last === undefined) return false;
  const expected: number[] = [];
  const iterator = CronExpressionParser.parse(cron, {
    currentDate: new Date(first - 1000),
    tz: timeZone,
  });
  while (expected.length <= times.length) {
    const next = iterator.next().getTime();
    if (next > last) break;
    expected.push(next);
  }
  return expected.length === times.length && expected.every((t, i) => t === times[i]);
}
