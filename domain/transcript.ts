import { setImmediate as nextTurn } from "node:timers/promises";
import { parseSessionDate } from "./session-dates.ts";

/**
 * Chat transcripts: plain text, one message per line, `[DD.MM.YYYY HH:MM:SS] Role: text` with
 * Role User, Assistant or System in any case. A line without that prefix is kept as content
 * with role `unknown`, so nothing the company sent is dropped.
 *
 * Transcripts are read as a stream (`transcriptLines`) and parsed a line at a time
 * (`parseTranscriptLine`), so memory follows the longest line, not the transcript's size.
 */

export type MessageRole = "user" | "assistant" | "system" | "unknown";

export interface TranscriptMessage {
  order: number;
  timestamp: Date | null;
  role: MessageRole;
  content: string;
}

const LINE_PATTERN = /^\[([^\]]+)\]\s*(user|assistant|system)\s*:\s?/i;
const UNSTAMPED_PATTERN = /^(user|assistant|system)\s*:\s?/i;
/**
 * Terminal escape sequences (colour codes of a chat export piped through a terminal): CSI
 * (`ESC [ ... final`, or the 8-bit CSI), OSC (`ESC ] ... BEL|ST`) and two-byte `ESC x`.
 */
const ESCAPE_SEQUENCE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  /\u001b\[[0-?]*[ -/]*[@-~]|\u009b[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-Z\\-_]/g;

/** Parses a whole transcript held in memory (small inputs, tests). */
export function parseTranscript(text: string, zone = "UTC"): TranscriptMessage[] {
  const messages: TranscriptMessage[] = [];
  for (const line of text.replace(/^\uFEFF/, "").split(/\r\n|\n|\r/)) {
    const message = parseTranscriptLine(line, messages.length, zone);
    if (message) messages.push(message);
  }
  return messages;
}

/**
 * One line as a message with the given order; null for a blank line. Escape sequences before
 * the role are looked through to find it, and kept at the start of the content, so the text is
 * stored as sent.
 */
export function parseTranscriptLine(
  rawLine: string,
  order: number,
  zone = "UTC",
): TranscriptMessage | null {
  const line = cleanLine(rawLine);
  if (line === "") return null;
  const visible = withoutEscapes(line);
  const stamped = LINE_PATTERN.exec(visible.text);
  if (stamped) {
    return {
      order,
      timestamp: safeDate(stamped[1] ?? "", zone),
      role: (stamped[2] ?? "").toLowerCase() as MessageRole,
      content: visible.contentAfter(stamped[0].length),
    };
  }
  const unstamped = UNSTAMPED_PATTERN.exec(visible.text);
  if (unstamped) {
    return {
      order,
      timestamp: null,
      role: (unstamped[1] ?? "").toLowerCase() as MessageRole,
      content: visible.contentAfter(unstamped[0].length),
    };
  }
  return { order, timestamp: null, role: "unknown", content: line };
}

/** Whether a line holds a message (parseTranscriptLine gives one for it), without parsing it. */
export function isMessageLine(rawLine: string): boolean {
  return cleanLine(rawLine) !== "";
}

function cleanLine(rawLine: string): string {
  // PostgreSQL text cannot hold NUL: drop it rather than fail the whole transcript.
  return (rawLine.includes("\u0000") ? rawLine.replaceAll("\u0000", "") : rawLine).trim();
}

/**
 * The line with its escape sequences removed (to match the prefix on), and a way back: the
 * original text after the first `n` visible characters, prefixed with the escape sequences that
 * sat inside those characters.
 */
function withoutEscapes(line: string): { text: string; contentAfter(n: number): string } {
  if (!line.includes("\u001b") && !line.includes("\u009b")) {
    return { text: line, contentAfter: (n) => line.slice(n) };
  }
  const escapes: { at: number; end: number; visibleAt: number }[] = [];
  let text = "";
  let last = 0;
  for (const match of line.matchAll(ESCAPE_SEQUENCE)) {
    text += line.slice(last, match.index);
    escapes.push({ at: match.index, end: match.index + match[0].length, visibleAt: text.length });
    last = match.index + match[0].length;
  }
  text += line.slice(last);
  const trimmed = text.trimStart();
  const lead = text.length - trimmed.length;
  return {
    text: trimmed,
    contentAfter: (n) => {
      const cut = n + lead;
      // Visible character `cut` sits after every escape inserted at or before it.
      let originalCut = cut;
      let kept = "";
      for (const sequence of escapes) {
        if (sequence.visibleAt > cut) break;
        originalCut += sequence.end - sequence.at;
        kept += line.slice(sequence.at, sequence.end);
      }
      return kept + line.slice(originalCut);
    },
  };
}

/**
 * Lines of a byte stream, decoded as UTF-8 (a character split across chunks is joined; a BOM
 * is dropped). Holds one chunk and one partial line at a time. A CR LF split across chunks
 * yields an extra empty line, which parsing skips like any blank line. Gives the event loop a
 * turn after every chunk: an async generator alone runs on microtasks, and a 450,000-line
 * buffer would hold off timers and sockets (heartbeats, /livez) until its last line.
 */
export async function* transcriptLines(
  chunks: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>,
): AsyncGenerator<string> {
  const decoder = new TextDecoder("utf-8");
  let carry = "";
  for await (const chunk of chunks) {
    const text =
      carry + (typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true }));
    const lines = text.split(/\r\n|\n|\r/);
    carry = lines.pop() ?? "";
    yield* lines;
    await nextTurn();
  }
  const rest = carry + decoder.decode();
  if (rest !== "") yield rest;
}

function safeDate(raw: string, zone: string): Date | null {
  try {
    return parseSessionDate(raw, zone);
  } catch {
    return null;
  }
}
