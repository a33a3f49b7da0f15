import { BlockList, isIPv4, isIPv6 } from "node:net";

/**
 * Which IP addresses a fetch of company-controlled URLs (CSV exports, transcripts) must not
 * reach: the worker's own host, its private network and the cloud metadata service are not the
 * companies' to read. Applied to literal addresses before connecting and to every address a
 * host name resolves to at connect time (see adapters/http-source.ts).
 */

/** [first address, prefix length, what the range is] */
const IPV4_RANGES: readonly [string, number, string][] = [
  ["0.0.0.0", 8, "unspecified ('this network')"],
  ["10.0.0.0", 8, "private (RFC 1918)"],
  ["100.64.0.0", 10, "shared carrier-grade NAT (RFC 6598)"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local (cloud metadata lives here)"],
  ["172.16.0.0", 12, "private (RFC 1918)"],
  ["192.0.0.0", 24, "IETF protocol assignments"],
  ["192.168.0.0", 16, "private (RFC 1918)"],
  ["198.18.0.0", 15, "benchmarking (RFC 2544)"],
  ["224.0.0.0", 4, "multicast"],
  ["240.0.0.0", 4, "reserved (incl. broadcast)"],
];

const IPV6_RANGES: readonly [string, number, string][] = [
  ["::", 128, "unspecified"],
  ["::1", 128, "loopback"],
  ["100::", 64, "discard-only (RFC 6666)"],
  ["fc00::", 7, "unique-local"],
  ["fe80::", 10, "link-local"],
  ["fec0::", 10, "site-local (deprecated)"],
  ["ff00::", 8, "multicast"],
];

const lists = [...IPV4_RANGES, ...IPV6_RANGES].map(([address, prefix, label]) => {
  const list = new BlockList();
  list.addSubnet(address, prefix, isIPv4(address) ? "ipv4" : "ipv6");
  return { list, label };
});

/** The eight 16-bit groups of an IPv6 address (an embedded dotted quad included). */
function ipv6Groups(address: string): number[] | undefined {
  let text = address.toLowerCase().replace(/%.*$/, "");
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1];
  if (dotted) {
    const [a = 0, b = 0, c = 0, d = 0] = dotted.split(".").map(Number);
    text = `${text.slice(0, -dotted.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const part = (s: string) => (s === "" ? [] : s.split(":").map((g) => Number.parseInt(g, 16)));
  const front = part(head);
  const back = tail === undefined ? [] : part(tail);
  const groups =
    tail === undefined
      ? front
      : [...front, ...Array(8 - front.length - back.length).fill(0), ...back];
  return groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff) ? groups : undefined;
}

const toIpv4 = (high: number, low: number) =>
  `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;

/**
 * The IPv4 address an IPv6 address carries, for the forms that reach it: IPv4-mapped
 * (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:AB:CD::).
 */
function embeddedIpv4(address: string): string | undefined {
  const g = ipv6Groups(address);
  if (!g) return undefined;
  const [g0, g1, g2, g3, g4, g5, g6 = 0, g7 = 0] = g;
  const zeroTo = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeroTo(5) && g5 === 0xffff) return toIpv4(g6, g7);
  if (zeroTo(6) && (g6 !== 0 || g7 > 1)) return toIpv4(g6, g7);
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) {
    return toIpv4(g6, g7);
  }
  if (g0 === 0x2002) return toIpv4(g1 ?? 0, g2 ?? 0);
  return undefined;
}

/**
 * Why fetching from this address is refused, or undefined when it is a public address. A value
 * that is not an IP address at all is refused too (the caller passes resolved addresses only).
 */
export function refusedAddressReason(address: string): string | undefined {
  const bare = address.replace(/^\[|\]$/g, "");
  const family = isIPv4(bare) ? "ipv4" : isIPv6(bare) ? "ipv6" : undefined;
  if (!family) return "not an IP address";
  for (const { list, label } of lists) {
    if (list.check(bare, family)) return label;
  }
  if (family === "ipv6") {
    const inner = embeddedIpv4(bare);
    if (inner) {
      const reason = refusedAddressReason(inner);
      if (reason) return `${reason}, embedded in an IPv6 address`;
    }
  }
  return undefined;
}

/** An internal range the operator opened (FETCH_ALLOW_PRIVATE_NETWORKS=10.1.0.0/16,...). */
export interface NetworkRange {
  address: string;
  prefix: number;
}

/** Parses `a.b.c.d/n`, `x::/n` or a single address; undefined when it is neither. */
export function parseNetworkRange(text: string): NetworkRange | undefined {
  const [address = "", prefixText, extra] = text.trim().split("/");
  if (extra !== undefined) return undefined;
  const bits = isIPv4(address) ? 32 : isIPv6(address) ? 128 : 0;
  if (bits === 0) return undefined;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText ?? String(bits)) || prefix > bits) return undefined;
  return { address, prefix };
}

/**
 * The address check of one fetch hop: the reason an address is refused, honouring the ranges
 * the operator opened. `true` opens every internal range.
 */
export function addressGuard(
  opened: boolean | readonly NetworkRange[] | undefined,
): ((address: string) => string | undefined) | undefined {
  if (opened === true) return undefined;
  const allowed = new BlockList();
  for (const range of opened || []) {
    allowed.addSubnet(range.address, range.prefix, isIPv4(range.address) ? "ipv4" : "ipv6");
  }
  return (address) => {
    const reason = refusedAddressReason(address);
    if (!reason) return undefined;
    const bare = address.replace(/^\[|\]$/g, "");
    return allowed.check(bare, isIPv4(bare) ? "ipv4" : "ipv6") ? undefined : reason;
  };
}
