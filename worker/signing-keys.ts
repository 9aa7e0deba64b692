/**
 * The HMAC keys made from TOKEN_SIGNING_KEY, each imported once per secret value: the browser's
 * JWTs use the secret itself (HS256), the agent's polling handles and API keys each a key
 * HKDF-derived from it for that use alone (RFC 5869). Keys are cached, not the import's promise, which must not be shared
 * across requests; importing per call would add a WebCrypto call to every poll and look-up.
 */
import { base64url } from "jose";
import { requireSecret } from "./config";
import { HttpError } from "./errors";

export type KeyUse = "token" | "handle" | "api_key" | "operator";

/** HKDF `info` per derived use (RFC 5869 §3.2): one key per purpose, none usable for another. */
const DERIVED_KEY_INFO: Record<Exclude<KeyUse, "token">, Uint8Array> = {
  handle: new TextEncoder().encode("keyferry polling handle v1"),
  api_key: new TextEncoder().encode("keyferry api key v1"),
  // Invitations, console session cookies, WebAuthn user handles and sign-in challenges: each message
  // starts with its own prefix (worker/console/signed-fields.ts), so none stands in for another.
  operator: new TextEncoder().encode("keyferry operator v1"),
};
const HMAC = { name: "HMAC", hash: "SHA-256" } as const;

const caches: Record<KeyUse, Map<string, CryptoKey>> = { token: new Map(), handle: new Map(), api_key: new Map(), operator: new Map() };

export async function hmacKey(env: Env, use: KeyUse): Promise<CryptoKey> {
  const encoded = requireSecret(env, "TOKEN_SIGNING_KEY");
  const cached = caches[use].get(encoded);
  if (cached) return cached;
  const key = await importKey(decodeSigningSecret(encoded), use);
  caches[use].set(encoded, key);
  return key;
}

async function importKey(secret: Uint8Array, use: KeyUse): Promise<CryptoKey> {
  if (use === "token") return crypto.subtle.importKey("raw", secret, HMAC, false, ["sign", "verify"]);
  const base = await crypto.subtle.importKey("raw", secret, "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(), info: DERIVED_KEY_INFO[use] }, base, { ...HMAC, length: 256 }, false, ["sign", "verify"]);
}

/** TOKEN_SIGNING_KEY's bytes: base64url of at least 32 random bytes, else a server fault. */
function decodeSigningSecret(encoded: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = base64url.decode(encoded);
  } catch {
    bytes = new Uint8Array();
  }
  if (bytes.byteLength < 32) {
    console.error("TOKEN_SIGNING_KEY must be base64url of at least 32 random bytes");
    throw new HttpError(500, "server_error", "The server is not configured.");
  }
  return bytes;
}
