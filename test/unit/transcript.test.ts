import { describe, expect, it } from "vitest";
import { parseTranscript, parseTranscriptLine, transcriptLines } from "../../domain/transcript.ts";

async function linesOf(chunks: (string | Uint8Array)[]): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of transcriptLines(chunks)) lines.push(line);
  return lines;
}

describe("transcript lines behind terminal escape sequences", () => {
  it("a line starting with a colour code keeps its role and timestamp, and its text as sent", () => {
    expect(parseTranscriptLine("\x1b[31m[30.04.2025 11:38:14] User: hi", 0)).toEqual({
      order: 0,
      timestamp: new Date("2025-04-30T11:38:14Z"),
      role: "user",
      // The escape sequence the line started with stays with the text: nothing dropped.
      content: "\x1b[31mhi",
    });
  });

  it("codes around the role, an OSC title and a reset at the end are looked through the same way", () => {
    expect(
      parseTranscriptLine("[30.04.2025 11:38:14] \x1b[1mAssistant\x1b[0m: hello \x1b[1mthere", 3),
    ).toMatchObject({
      order: 3,
      role: "assistant",
      timestamp: new Date("2025-04-30T11:38:14Z"),
      content: "\x1b[1m\x1b[0mhello \x1b[1mthere",
    });
    expect(parseTranscriptLine("\x1b]0;chat export\x07System: ok\x1b[0m", 0)).toMatchObject({
      role: "system",
      timestamp: null,
      content: "\x1b]0;chat export\x07ok\x1b[0m",
    });
    expect(parseTranscriptLine("  \x1b[0m  [30.04.2025 11:38:14] user: spaced", 0)).toMatchObject({
      role: "user",
      content: "\x1b[0mspaced",
    });
  });

  it("a line whose text only contains escape codes is kept whole with role unknown", () => {
    expect(parseTranscriptLine("plain \x1b[31mline", 0)).toEqual({
      order: 0,
      timestamp: null,
      role: "unknown",
      content: "plain \x1b[31mline",
    });
  });

  it("lines without escape sequences parse as before", () => {
    expect(
      parseTranscript(
        "\uFEFF[30.04.2025 11:38:14] User: hi\r\n\r\nAssistant:hello\rfree text\u0000 here",
      ),
    ).toEqual([
      { order: 0, timestamp: new Date("2025-04-30T11:38:14Z"), role: "user", content: "hi" },
      { order: 1, timestamp: null, role: "assistant", content: "hello" },
      { order: 2, timestamp: null, role: "unknown", content: "free text here" },
    ]);
  });
});

describe("transcript lines from a byte stream", () => {
  it("joins lines and multi-byte characters split across chunks, and drops a BOM", async () => {
    const bytes = Buffer.from("\uFEFFUser: grüße\r\nAssistant: ok\rlast €", "utf8");
    const whole = await linesOf([bytes]);
    // Cut the bytes at every position: inside the BOM, the ü, the € and the CR LF.
    for (let cut = 1; cut < bytes.length; cut++) {
      const lines = (await linesOf([bytes.subarray(0, cut), bytes.subarray(cut)])).filter(
        (line) => line !== "",
      );
      expect(lines, `cut at byte ${cut}`).toEqual(whole);
    }
    expect(whole).toEqual(["User: grüße", "Assistant: ok", "last €"]);
  });

  it("gives the same messages as parsing the whole text", async () => {
    const text = Array.from({ length: 500 }, (_, i) =>
      i % 3 === 0 ? `[01.05.2025 10:00:00] User: m${i}` : i % 3 === 1 ? `Assistant: m${i}` : "",
    ).join("\n");
    const bytes = Buffer.from(text);
    const streamed = [];
    for await (const line of transcriptLines(
      Array.from({ length: Math.ceil(bytes.length / 97) }, (_, i) =>
        bytes.subarray(i * 97, i * 97 + 97),
      ),
    )) {
      const message = parseTranscriptLine(line, streamed.length);
      if (message) streamed.push(message);
    }
    expect(streamed).toEqual(parseTranscript(text));
    expect(streamed).toHaveLength(334);
  });
});
