/**
 * Where the service may POST (webhooks, CIBA ping endpoints, and any later push endpoint): https to
 * a public host on port 443 or 8443 only; with ALLOW_HTTP_WEBHOOKS=true (local testing) also
 * http(s)://127.0.0.1 and http(s)://localhost on any port.
 *
 * IP literals in private, loopback, link-local, unique-local, shared, documentation, reserved and
 * multicast ranges (IPv4 and IPv6, IPv4 embedded or translated in IPv6 included) are refused, and so
 * are `localhost` names (RFC 6761 §6.3), however spelled: the host is compared after the URL parser's
 * percent-decoding and without its trailing dots (`localhost.` is `localhost`, RFC 1034 §3.1). A URL
 * must not point the service at a metadata endpoint, an internal network or a non-web port. A DNS
 * name is not resolved here; the runtime's `fetch` reaches only the public internet.
 */
import { parseIpv4, parseIpv6 } from "./ip";

/** Ports a public receiver may listen on: https's own, and its common alternative. */
const PUBLIC_PORTS = new Set(["", "443", "8443"]);

/** The one outbound-URL filter: every URL the service will POST to passes here first. */
export function isAllowedWebhookUrl(value: string, allowHttpLoopback: boolean): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.username || url.password) return false;
  const host = normalizedHost(url.hostname);
  if (host === null) return false;
  if (allowHttpLoopback && (url.protocol === "http:" || url.protocol === "https:") && (host === "127.0.0.1" || host === "localhost")) return true;
  return url.protocol === "https:" && PUBLIC_PORTS.has(url.port) && !isInternalHost(host);
}

/**
 * The host lower-cased and without trailing dots. The URL parser has percent-decoded it already
 * (`localhost%2E` is `localhost.`, `127%2E0.0.1` is `127.0.0.1`); a `%` it left is refused (null).
 */
function normalizedHost(hostname: string): string | null {
  const host = hostname.toLowerCase().replace(/\.+$/, "");
  return host === "" || host.includes("%") ? null : host;
}

/** `hostname` normalized: IPv4 dotted decimal, IPv6 in brackets and compressed, no trailing dot. */
function isInternalHost(hostname: string): boolean {
  if (hostname === "localhost" || hostname.endsWith(".localhost")) return true;
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
    (a === 192 && b === 0 && (c === 0 || c === 2)) || // IETF protocol assignments; documentation (RFC 5737)
    (a === 198 && b === 51 && c === 100) || // documentation
    (a === 203 && b === 0 && c === 113) || // documentation
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
  if (zeroPrefix(4) && g[4] === 0xffff && g[5] === 0) return true; // IPv4-translated ::ffff:0:a.b.c.d (RFC 2765)
  if (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 1) return true; // local-use NAT64 64:ff9b:1::/48 (RFC 8215)
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return isInternalIpv4(embeddedV4); // NAT64 64:ff9b::/96
  if (g[0] === 0x2002) return isInternalIpv4([g[1]! >> 8, g[1]! & 0xff, g[2]! >> 8, g[2]! & 0xff]); // 6to4
  return (
    (g[0]! & 0xfe00) === 0xfc00 || // unique local fc00::/7 (fd00::/8 included)
    (g[0]! & 0xffc0) === 0xfe80 || // link-local fe80::/10
    (g[0]! & 0xffc0) === 0xfec0 || // site-local fec0::/10 (deprecated)
    (g[0]! & 0xff00) === 0xff00 || // multicast
    (g[0] === 0x100 && g[1] === 0 && g[2] === 0 && g[3] === 0) || // discard-only 100::/64
    (g[0] === 0x2001 && g[1] === 0) || // Teredo 2001::/32 (RFC 4380): tunnels to any IPv4 address
    (g[0] === 0x2001 && g[1] === 0xdb8) || // documentation (RFC 3849)
    (g[0] === 0x3fff && g[1]! < 0x1000) // documentation 3fff::/20 (RFC 9637)
  );
}
