/**
 * Polling handles: the device code (RFC 8628 §3.2) and the CIBA `auth_req_id` (CIBA Core §7.3).
 * Opaque to clients; to us `<kind>.<user code>.<expiry, ms>.<secret>.<tag>`, where the tag is
 * HMAC-SHA-256 over everything before it, under a key derived from TOKEN_SIGNING_KEY for this use
 * alone (worker/signing-keys.ts). The agent presents its handle on every poll, so checking one is a split, a few exact
 * pattern tests and one WebCrypto verification (constant time): no JSON, no header, no claims.
 * That is what lets a forged or expired handle be answered without touching a Durable Object
 * (DESIGN.md) at a fraction of a JWS verification's cost (bench/README.md).
 *
 * The request object keeps the tag, a keyed hash of the whole handle and its 256-bit secret: it
 * proves a handle belongs to this request, not an earlier one under the same user code, even to
 * someone holding the signing key, and says nothing about the secret.
 */
import { base64url } from "jose";
import { USER_CODE_ALPHABET, USER_CODE_LENGTH } from "../core/user-code";
import { hmacKey } from "./signing-keys";

export type HandleKind = "device_code" | "auth_req_id";

const PREFIX: Record<HandleKind, string> = { device_code: "kfd1", auth_req_id: "kfa1" };
const encoder = new TextEncoder();

export interface Handle {
  userCode: string;
  expiresAt: number;
  /** The 256-bit secret, base64url; a device code's also unwraps the request's payload key. */
  secret: string;
  /** What the request object keeps and compares (base64url). */
  tag: string;
}

/**
 * The tag must be the canonical encoding of its 32 bytes: the last of its 43 characters carries
 * 2 unused bits, which must be zero, or four spellings would decode to one tag.
 */
const SHAPE = new RegExp(
  `^(kfd1|kfa1)\\.([${USER_CODE_ALPHABET}]{${USER_CODE_LENGTH}})\\.([1-9][0-9]{0,15})\\.([A-Za-z0-9_-]{43})\\.([A-Za-z0-9_-]{42}[AEIMQUYcgkosw048])$`,
);

export async function signHandle(env: Env, kind: HandleKind, fields: { userCode: string; expiresAt: number; secret: Uint8Array }): Promise<{ handle: string; tag: string }> {
  const body = `${PREFIX[kind]}.${fields.userCode}.${fields.expiresAt}.${base64url.encode(fields.secret)}`;
  const tag = base64url.encode(new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(env, "handle"), encoder.encode(body))));
  return { tag, handle: `${body}.${tag}` };
}

/** The handle's fields if it is well formed, of this kind and signed by us; else null. Expiry is the caller's check. */
export async function verifyHandle(env: Env, kind: HandleKind, handle: string): Promise<Handle | null> {
  const match = handle.length <= 128 ? SHAPE.exec(handle) : null;
  if (!match || match[1] !== PREFIX[kind]) return null;
  const [, , userCode, expiry, secret, tag] = match as unknown as [string, string, string, string, string, string];
  const body = handle.slice(0, handle.length - tag.length - 1);
  const valid = await crypto.subtle.verify("HMAC", await hmacKey(env, "handle"), base64url.decode(tag), encoder.encode(body));
  if (!valid) return null;
  return { userCode, expiresAt: Number(expiry), secret, tag };
}
