/**
 * The one type guard every request parser in the stand-in needs (chat bodies, batch lines,
 * batch metadata), kept in one place so they agree on what a JSON object is.
 */

/** A plain JSON object: not null, not an array. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
