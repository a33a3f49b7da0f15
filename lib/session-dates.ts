/**
 * The companies' timestamps: `DD.MM.YYYY HH:mm:ss` (seconds optional), no zone given. They are
 * read as wall-clock time in a configured IANA zone (UTC by default).
 */

const DATE_PATTERN = /^(\d{1,2})\.(\d{1,2})\.(\d{4})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?$/;

/** Years a session can plausibly have: before 1970 or after 2100 is a broken export, not a chat. */
export const MIN_SESSION_YEAR = 1970;
export const MAX_SESSION_YEAR = 2100;

const shown = (raw: string) => (raw.length > 40 ? `${raw.slice(0, 40)}…` : raw);

export class DateFormatError extends Error {
  /** A well-formed date outside the plausible years (not a format problem). */
  readonly implausible: boolean;
  constructor(raw: string, problem?: string) {
    super(problem ?? `"${shown(raw)}" is not a date in DD.MM.YYYY HH:mm:ss format`);
    this.name = "DateFormatError";
    this.implausible = problem !== undefined;
  }
}

/** Offset of `zone` from UTC at the given instant, in ms. */
function zoneOffsetMs(instant: number, zone: string): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(instant));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const asUtc = Date.UTC(
    get("year"),
    get("month") - 1,
    get("day"),
    get("hour"),
    get("minute"),
    get("second"),
  );
  return asUtc - Math.floor(instant / 1000) * 1000;
}

/** Parses a CSV timestamp as wall-clock time in `zone`; throws DateFormatError when invalid. */
export function parseSessionDate(raw: string, zone = "UTC"): Date {
  const match = DATE_PATTERN.exec(raw.trim());
  if (!match) throw new DateFormatError(raw);
  const [day, month, year, hour, minute, second] = match.slice(1).map((v) => Number(v ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (year < MIN_SESSION_YEAR || year > MAX_SESSION_YEAR) {
    throw new DateFormatError(
      raw,
      `"${shown(raw)}" has the year ${match[3]}, outside ${MIN_SESSION_YEAR}-${MAX_SESSION_YEAR}`,
    );
  }
  // Not Date.UTC(year, ...) alone: it reads years 0-99 as 1900-1999.
  const check = new Date(Date.UTC(2000, month - 1, day, hour, minute, second));
  check.setUTCFullYear(year, month - 1, day);
  const wall = check.getTime();
  // Date.UTC rolls 31.02 over into March: a rolled-over date is not a date.
  if (
    check.getUTCDate() !== day ||
    check.getUTCMonth() !== month - 1 ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    throw new DateFormatError(raw);
  }
  if (zone === "UTC") return check;
  // Two passes settle the offset also next to a DST change.
  let instant = wall - zoneOffsetMs(wall, zone);
  instant = wall - zoneOffsetMs(instant, zone);
  return new Date(instant);
}
