/**
 * The companies' timestamps: `DD.MM.YYYY HH:mm:ss` (seconds optional), no zone given. They are
 * read as wall-clock time in a configured IANA zone (UTC by default).
 */

const DATE_PATTERN = /^(\d{1,2})\.(\d{1,2})\.(\d{4})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?$/;

export class DateFormatError extends Error {
  constructor(raw: string) {
    super(
      `"${raw.length > 40 ? `${raw.slice(0, 40)}…` : raw}" is not a date in DD.MM.YYYY HH:mm:ss format`,
    );
    this.name = "DateFormatError";
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
  const wall = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(wall);
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
