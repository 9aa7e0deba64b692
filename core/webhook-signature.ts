/**
 * `Keyferry-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>` (README,
 * "Webhooks into a chat tool"). The timestamp is signed with the body, so a receiver that refuses
 * old timestamps refuses replays.
 */
const encoder = new TextEncoder();

function hmacKey(secret: string, usage: "sign" | "verify"): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [usage]);
}

export async function signWebhook(secret: string, rawBody: string, unixSeconds: number): Promise<string> {
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(secret, "sign"), encoder.encode(`${unixSeconds}.${rawBody}`)));
  return `t=${unixSeconds},v1=${Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * Verifies a signature header as a receiver should: the MAC over the raw body, and a timestamp no
 * older than `toleranceSeconds` (default five minutes). WebCrypto's `verify` compares the MAC in
 * constant time.
 */
export async function verifyWebhook(
  secret: string,
  rawBody: string,
  header: string | null,
  nowSeconds = Math.floor(Date.now() / 1000),
  toleranceSeconds = 300,
): Promise<boolean> {
  const parts = Object.fromEntries((header ?? "").split(",").map((part) => part.trim().split("=", 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const mac = /^[0-9a-f]{64}$/.test(parts.v1 ?? "") ? Uint8Array.from(parts.v1!.match(/../g)!, (pair) => Number.parseInt(pair, 16)) : null;
  return mac !== null && crypto.subtle.verify("HMAC", await hmacKey(secret, "verify"), mac, encoder.encode(`${t}.${rawBody}`));
}
