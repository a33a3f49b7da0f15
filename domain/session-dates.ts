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

/** One formatter per zone: creating an Intl.DateTimeFormat costs more than formatting with it. */
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(zone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(zone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(zone, formatter);
  }
  return formatter;
}

/** Offset of `zone` from UTC at the given instant, in ms. */
function zoneOffsetMs(instant: number, zone: string): number {
  const parts = formatterFor(zone).formatToParts(new Date(instant));
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

/** Reads `count` ASCII digits at `at` (-1 when one is not a digit). */
function digitsAt(raw: string, at: number, count: number): number {
  let value = 0;
  for (let i = at; i < at + count; i++) {
    const d = raw.charCodeAt(i) - 48;
    if (!(d >= 0 && d <= 9)) return -1;
    value = value * 10 + d;
  }
  return value;
}

const isDigit = (raw: string, at: number) => {
  const c = raw.charCodeAt(at);
  return c >= 48 && c <= 57;
};

/** Days from 1970-01-01 to a proleptic Gregorian date (Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * The wall-clock time of a well-formed, plausible, valid timestamp in UTC ms, read from its
 * characters without a regular expression, arrays or a Date: a million-row import reads two per
 * row, and the regex path allocated ~800 bytes each. Anything else (surrounding spaces, a bad
 * date, an implausible year) is undefined and takes the regex path, which says what is wrong, so
 * the two paths accept exactly the same strings.
 */
export function fastWallClockMs(raw: string): number | undefined {
  let at = 0;
  const dayDigits = isDigit(raw, 1) ? 2 : 1;
  const day = digitsAt(raw, at, dayDigits);
  at += dayDigits;
  if (day < 0 || raw.charCodeAt(at) !== 46) return undefined;
  at += 1;
  const monthDigits = isDigit(raw, at + 1) ? 2 : 1;
  const month = digitsAt(raw, at, monthDigits);
  at += monthDigits;
  if (month < 0 || raw.charCodeAt(at) !== 46) return undefined;
  const year = digitsAt(raw, at + 1, 4);
  at += 5;
  const separator = raw.charCodeAt(at);
  if (year < 0 || (separator !== 32 && separator !== 84)) return undefined;
  at += 1;
  const hourDigits = isDigit(raw, at + 1) ? 2 : 1;
  const hour = digitsAt(raw, at, hourDigits);
  at += hourDigits;
  if (hour < 0 || raw.charCodeAt(at) !== 58) return undefined;
  const minute = digitsAt(raw, at + 1, 2);
  at += 3;
  let second = 0;
  if (at < raw.length) {
    if (raw.charCodeAt(at) !== 58) return undefined;
    second = digitsAt(raw, at + 1, 2);
    at += 3;
  }
  if (minute < 0 || second < 0 || at !== raw.length) return undefined;
  if (year < MIN_SESSION_YEAR || year > MAX_SESSION_YEAR) return undefined;
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  return daysFromCivil(year, month, day) * 86_400_000 + ((hour * 60 + minute) * 60 + second) * 1000;
}

/** The instant a wall-clock time in `zone` names. Two passes settle the offset next to a DST change. */
export function inZone(wall: number, zone: string): number {
  if (zone === "UTC") return wall;
  const instant = wall - zoneOffsetMs(wall, zone);
  return wall - zoneOffsetMs(instant, zone);
}

/**
 * A CSV timestamp as wall-clock time in `zone`, in epoch ms; throws DateFormatError when invalid.
 * Well-formed values take the allocation-free path (the import reads two per row, import
 * processing two per session, a transcript one per message); the regular expression reads the
 * rest and says what is wrong.
 */
export function sessionDateMs(raw: string, zone = "UTC"): number {
  return inZone(fastWallClockMs(raw) ?? regexWallClockMs(raw), zone);
}

/** Parses a CSV timestamp as wall-clock time in `zone`; throws DateFormatError when invalid. */
export function parseSessionDate(raw: string, zone = "UTC"): Date {
  return new Date(sessionDateMs(raw, zone));
}

/**
 * The wall-clock time of a timestamp in UTC ms, read by the regular expression: the reference
 * the allocation-free path is tested against, and the one that explains a bad value.
 */
export function regexWallClockMs(raw: string): number {
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
  return check.getTime();
}
