/**
 * Generated CSV data, shared by the benches and the CSV source child (bench/csv-source.ts), which
 * must load nothing else of the bench's.
 */

import { Readable } from "node:stream";

/** One realistic 16-column session row (the companies' headerless CSV format). */
export function csvLine(prefix: string, i: number): string {
  const minute = String(i % 60).padStart(2, "0");
  return `${prefix}-${i},30.04.2025 11:${minute}:48,30.04.2025 11:${minute}:59,10.0.${(i >> 8) & 255}.${i & 255},NL,english,${(i % 9) + 1},happy,no,no,https://example.test/t/${prefix}-${i}.txt,3.977,${6000 + (i % 1000)},0.0010,Greeting,"Good day, I have a question about my salary"\n`;
}

/** Lines 0..rows-1 from `line(i)` as a stream of ~64 KiB chunks, generated on the fly. */
export function generatedStream(rows: number, line: (i: number) => string): Readable {
  let i = 0;
  return new Readable({
    read() {
      if (i >= rows) {
        this.push(null);
        return;
      }
      let chunk = "";
      while (i < rows && chunk.length < 64 * 1024) chunk += line(i++);
      this.push(chunk);
    },
  });
}

/** A company's CSV rows, generated on the fly. */
export function csvStream(prefix: string, rows: number): Readable {
  return generatedStream(rows, (i) => csvLine(prefix, i));
}
