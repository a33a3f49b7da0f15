import { parseSessionDate } from "./session-dates.ts";

/**
 * Chat transcripts: plain text, one message per line, `[DD.MM.YYYY HH:MM:SS] Role: text` with
 * Role User, Assistant or System in any case. A line without that prefix is kept as content
 * with role `unknown`, so nothing the company sent is dropped.
 */

export type MessageRole = "user" | "assistant" | "system" | "unknown";

export interface TranscriptMessage {
  order: number;
  timestamp: Date | null;
  role: MessageRole;
  content: string;
}

const LINE_PATTERN = /^\[([^\]]+)\]\s*(user|assistant|system)\s*:\s?(.*)$/i;
const UNSTAMPED_PATTERN = /^(user|assistant|system)\s*:\s?(.*)$/i;

export function parseTranscript(text: string, zone = "UTC"): TranscriptMessage[] {
  const messages: TranscriptMessage[] = [];
  // PostgreSQL text cannot hold NUL: drop it rather than fail the whole transcript.
  const clean = text.replace(/^\uFEFF/, "").replaceAll("\u0000", "");
  for (const rawLine of clean.split(/\r\n|\n|\r/)) {
    const line = rawLine.trim();
    if (line === "") continue;
    const stamped = LINE_PATTERN.exec(line);
    if (stamped) {
      messages.push({
        order: messages.length,
        timestamp: safeDate(stamped[1] ?? "", zone),
        role: (stamped[2] ?? "").toLowerCase() as MessageRole,
        content: stamped[3] ?? "",
      });
      continue;
    }
    const unstamped = UNSTAMPED_PATTERN.exec(line);
    messages.push(
      unstamped
        ? {
            order: messages.length,
            timestamp: null,
            role: (unstamped[1] ?? "").toLowerCase() as MessageRole,
            content: unstamped[2] ?? "",
          }
        : { order: messages.length, timestamp: null, role: "unknown", content: line },
    );
  }
  return messages;
}

function safeDate(raw: string, zone: string): Date | null {
  try {
    return parseSessionDate(raw, zone);
  } catch {
    return null;
  }
}
