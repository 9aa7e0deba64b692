/**
 * Where the service may POST (webhooks, CIBA ping endpoints): https to a public host only; with
 * ALLOW_HTTP_WEBHOOKS=true (local testing) also http(s)://127.0.0.1 and http(s)://localhost on any port.
 *
 * IP literals in private, loopback, link-local, unique-local, shared, reserved and multicast ranges
 * (IPv4 and IPv6, IPv4 embedded in IPv6 included) are refused, and so are `localhost` names
 * (RFC 6761 §6.3): a URL must not point the service at a metadata endpoint or an internal network.
 * A DNS name is not resolved here; the runtime's `fetch` reaches only the public internet.
 */
import { parseIpv4, parseIpv6 } from "./ip";

export function isAllowedWebhookUrl(value: string, allowHttpLoopback: boolean): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.username || url.password) return false;
  const host = url.hostname.toLowerCase();
  if (allowHttpLoopback && (url.protocol === "http:" || url.protocol === "https:") && (host === "127.0.0.1" || host === "localhost")) return true;
  return url.protocol === "https:" && !isInternalHost(host);
}

/** `hostname` as the URL parser normalizes it: IPv4 dotted decimal, IPv6 in brackets and compressed. */
export function isInternalHost(hostname: string): boolean {
  if (hostname === "localhost" || hostname.endsWith(".localhost") || hostname.endsWith(".localhost.")) return true;
  const v4 = parseIpv4(hostname);
  if (v4 !== null) return isInternalIpv4(v4);
  if (hostname.startsWith("[") && hostname.endsWith("]")) {
    const v6 = parseIpv6(hostname.slice(1, -1));
    return v6 === null || isInternalIpv6(v6);
  }
  return false;
}

/** The ranges of RFC 6890 that are not globally reachable. */
function isInternalIpv4([a, b, c]: number[]): boolean {
  return (
    a === 0 || // "this network"
    a === 10 || // private (RFC 1918)
    (a === 100 && b! >= 64 && b! <= 127) || // shared address space (RFC 6598)
    a === 127 || // loopback
    (a === 169 && b === 254) || // link-local, incl. the 169.254.169.254 metadata address
    (a === 172 && b! >= 16 && b! <= 31) || // private
    (a === 192 && b === 0 && c === 0) || // IETF protocol assignments
    (a === 192 && b === 168) || // private
    (a === 198 && (b === 18 || b === 19)) || // benchmarking
    a! >= 224 // multicast, reserved, broadcast
  );
}

function isInternalIpv6(g: number[]): boolean {
  const embeddedV4 = [g[6]! >> 8, g[6]! & 0xff, g[7]! >> 8, g[7]! & 0xff];
  const zeroPrefix = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeroPrefix(6)) return true; // ::, ::1 and the deprecated IPv4-compatible ::a.b.c.d
  if (zeroPrefix(5) && g[5] === 0xffff) return isInternalIpv4(embeddedV4); // IPv4-mapped ::ffff:a.b.c.d
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return isInternalIpv4(embeddedV4); // NAT64 64:ff9b::/96
  if (g[0] === 0x2002) return isInternalIpv4([g[1]! >> 8, g[1]! & 0xff, g[2]! >> 8, g[2]! & 0xff]); // 6to4
  return (
    (g[0]! & 0xfe00) === 0xfc00 || // unique local fc00::/7 (fd00::/8 included)
    (g[0]! & 0xffc0) === 0xfe80 || // link-local fe80::/10
    (g[0]! & 0xffc0) === 0xfec0 || // site-local fec0::/10 (deprecated)
    (g[0]! & 0xff00) === 0xff00 || // multicast
    (g[0] === 0x100 && g[1] === 0 && g[2] === 0 && g[3] === 0) || // discard-only 100::/64
    (g[0] === 0x2001 && g[1] === 0xdb8) // documentation
  );
}
