/**
 * Randomness the stand-in needs: a seeded generator (mulberry32) so injected failures and the
 * order of batch output repeat exactly from run to run, and unseeded ids shaped like OpenAI's
 * (chatcmpl-, file-, batch_, req_). Hand-written because the seeded sequence is part of what tests
 * rely on and must not depend on a library's algorithm. Also the epoch seconds every wire
 * timestamp uses.
 */

import { randomBytes } from "node:crypto";

/** mulberry32: tiny seeded PRNG, good enough to pick failures and shuffle lines. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a, to derive a shuffle seed from a batch's input. */
export function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash = Math.imul(hash ^ text.charCodeAt(index), 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * Fisher-Yates with a fixed seed. Real batch output has no guaranteed order, so a result that
 * happens to keep the input order is rotated by one: consumers must never rely on order.
 */
export function deterministicShuffle<T>(items: readonly T[], seed: number): T[] {
  const result = [...items];
  const random = seededRandom(seed);
  for (let index = result.length - 1; index > 0; index--) {
    const other = Math.floor(random() * (index + 1));
    const swap = result[index] as T;
    result[index] = result[other] as T;
    result[other] = swap;
  }
  if (result.length > 1 && result.every((item, index) => item === items[index])) {
    result.push(result.shift() as T);
  }
  return result;
}

const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

export function randomId(length: number): string {
  const bytes = randomBytes(length);
  let id = "";
  for (const byte of bytes) id += ID_ALPHABET[byte % ID_ALPHABET.length];
  return id;
}

export function requestId(): string {
  return `req_${randomBytes(16).toString("hex")}`;
}

export function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}
