/** IP address literals, parsed without a library: enough to classify and group addresses. */

export function parseIpv4(text: string): number[] | null {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return null;
  return parts.map(Number);
}

/** Eight 16-bit groups, or null. Accepts any valid spelling (compressed, embedded IPv4). */
export function parseIpv6(spelled: string): number[] | null {
  const text = spelled.trim().toLowerCase();
  let tail = text;
  let embedded: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const octets = parseIpv4(v4[1]!);
    if (!octets) return null;
    embedded = [(octets[0]! << 8) | octets[1]!, (octets[2]! << 8) | octets[3]!];
    tail = text.slice(0, -v4[1]!.length) + "0:0";
  }
  const halves = tail.split("::");
  if (halves.length > 2) return null;
  const groups = (s: string) => (s === "" ? [] : s.split(":").map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16) : NaN)));
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  const fill = halves.length === 2 ? 8 - head.length - rest.length : 0;
  const all = [...head, ...new Array<number>(Math.max(fill, 0)).fill(0), ...rest];
  if (all.length !== 8 || all.some(Number.isNaN)) return null;
  if (embedded.length) all.splice(6, 2, ...embedded);
  return all;
}


/**
 * Who a rate limit counts: an IPv4 address, or an IPv6 client's /64, which one subscriber usually
 * holds whole (RFC 6177), so rotating addresses within it buys no new attempts.
 */
export function rateLimitSubject(address: string): string {
  const v6 = address.includes(":") ? parseIpv6(address) : null;
  if (v6) return `ip6:${v6.slice(0, 4).map((g) => g.toString(16)).join(":")}::/64`;
  return `ip:${address}`;
}
