import type { IncomingMessage } from "node:http";
import { PassThrough, type Readable, Transform, type TransformCallback } from "node:stream";
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib";
import { PermanentSourceError, TransientSourceError } from "../domain/source-errors.ts";

/**
 * The body of a fetched source as the consumer reads it: decoded as its Content-Encoding says,
 * cut at a size limit, aborted when the server trickles. Every failure reaches the consumer as
 * a Permanent/TransientSourceError with words an operator can act on.
 */

export interface BodyLimits {
  maxBytes: number;
  /** Below this average rate over `rateWindowMs` the transfer is aborted (0: no minimum). */
  minBytesPerSecond: number;
  rateWindowMs: number;
}

const DECODERS: Record<string, { name: string; create: () => Transform }> = {
  gzip: { name: "gzip", create: createGunzip },
  "x-gzip": { name: "gzip", create: createGunzip },
  deflate: { name: "deflate", create: createInflate },
  br: { name: "brotli", create: createBrotliDecompress },
};

/** The decoders a Content-Encoding header asks for, outermost last; throws on an unknown one. */
export function contentDecoders(header: string | undefined): { label: string; name: string }[] {
  if (!header) return [];
  const codings = header
    .split(",")
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== "" && c !== "identity");
  return codings.map((coding) => {
    const decoder = DECODERS[coding];
    if (!decoder) {
      throw new PermanentSourceError(
        `the server sent Content-Encoding: ${coding.slice(0, 40)}, which is not supported (gzip, deflate or br)`,
      );
    }
    return { label: coding, name: decoder.name };
  });
}

/**
 * Wires the response through decoders, the size limit and the rate floor. `mapNetworkError`
 * classifies an error of the connection itself (reset, timeout, cancellation).
 */
export function decodedBody(
  response: IncomingMessage,
  limits: BodyLimits,
  mapNetworkError: (error: unknown) => Error,
): Readable {
  const output = new PassThrough();
  const fail = (error: Error) => {
    if (!output.destroyed) output.destroy(error);
  };
  const codings = contentDecoders(response.headers["content-encoding"]);
  const stages: Transform[] = [];
  let stream: Readable = response;
  response.on("error", (error) => fail(mapNetworkError(error)));
  // The header lists codings in the order they were applied: undo the last one first.
  for (const coding of [...codings].reverse()) {
    const decoder = DECODERS[coding.label]?.create() as Transform;
    decoder.on("error", () =>
      fail(
        new PermanentSourceError(
          `the body is not valid ${coding.name} although the server said Content-Encoding: ${coding.label}`,
        ),
      ),
    );
    stages.push(decoder);
    stream = stream.pipe(decoder);
  }
  const limit = new ByteLimit(limits.maxBytes);
  limit.on("error", fail);
  stages.push(limit);
  stream.pipe(limit).pipe(output);

  const stopRateCheck =
    limits.minBytesPerSecond > 0
      ? watchTransferRate(response, limits, () =>
          fail(
            new TransientSourceError(
              `the server sent less than ${limits.minBytesPerSecond} bytes per second over ${limits.rateWindowMs / 1000} s (FETCH_MIN_BYTES_PER_SECOND): transfer aborted`,
            ),
          ),
        )
      : () => undefined;
  // Once the consumer is done (end, error, destroy), release the connection and the timers.
  output.on("close", () => {
    stopRateCheck();
    for (const stage of stages) stage.destroy();
    response.destroy();
  });
  return output;
}

/**
 * Calls `tooSlow` when the bytes received over the last window average less than the floor.
 * Time during which the consumer holds the stream back (paused by backpressure) does not count:
 * a slow database must not look like a slow server.
 */
function watchTransferRate(
  response: IncomingMessage,
  limits: BodyLimits,
  tooSlow: () => void,
): () => void {
  const slots = 10;
  const tickMs = Math.max(10, Math.floor(limits.rateWindowMs / slots));
  const samples: number[] = [];
  let bytesThisTick = 0;
  let pausedThisTick = false;
  response.on("data", (chunk: Buffer) => {
    bytesThisTick += chunk.length;
  });
  response.on("pause", () => {
    pausedThisTick = true;
  });
  const timer = setInterval(() => {
    const paused = pausedThisTick || response.isPaused();
    pausedThisTick = false;
    const bytes = bytesThisTick;
    bytesThisTick = 0;
    if (paused) return;
    samples.push(bytes);
    if (samples.length > slots) samples.shift();
    if (samples.length < slots) return;
    const received = samples.reduce((a, b) => a + b, 0);
    if (received < (limits.minBytesPerSecond * tickMs * slots) / 1000) tooSlow();
  }, tickMs);
  timer.unref();
  // Once the server sent everything, how fast the consumer reads is none of its business.
  response.once("end", () => clearInterval(timer));
  return () => clearInterval(timer);
}

/** Passes bytes through until the limit, then fails the stream: an endless body cannot fill memory. */
class ByteLimit extends Transform {
  private seen = 0;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) {
      callback(
        new PermanentSourceError(`the response is larger than the limit of ${this.limit} bytes`),
      );
      return;
    }
    callback(null, chunk);
  }
}
