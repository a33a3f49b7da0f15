/** A failure a retry will not fix (bad URL, refused address, 4xx, oversize or undecodable body). */
export class PermanentSourceError extends Error {
  constructor(message: string) {
    super(boundText(message));
    this.name = "PermanentSourceError";
  }
}

/** A failure that may pass (network, 5xx, 429, timeout, a trickling server). */
export class TransientSourceError extends Error {
  constructor(message: string) {
    super(boundText(message));
    this.name = "TransientSourceError";
  }
}

/** Longest reason or URL kept in the database, logs and run records. */
export const MAX_REASON_CHARS = 500;

/**
 * Cuts a text to `max` characters, saying how much was cut: a 60,000-character URL must not
 * become a 60 KB error row or log line.
 */
export function boundText(text: string, max = MAX_REASON_CHARS): string {
  if (text.length <= max) return text;
  const note = (cut: number) => `… (${cut} more characters cut)`;
  const keep = Math.max(0, max - note(text.length).length);
  return `${text.slice(0, keep)}${note(text.length - keep)}`;
}
