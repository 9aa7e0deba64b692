/**
 * The operator side's self-verifying strings, in the shape of API keys and polling handles
 * (worker/auth.ts, worker/handles.ts): `<prefix>.<field>….<tag>`, the tag HMAC-SHA-256 over
 * everything before it under the key HKDF-derived for operators (worker/signing-keys.ts). The prefix
 * names the kind (invitation, console session, sign-in challenge), so one never stands in for
 * another; a forged or altered string is refused at the edge, before any object is touched.
 */
import { base64url } from "jose";
import { isAccountId, isOperatorId } from "../ids";
import { hmacKey } from "../signing-keys";

export type SignedKind = "invitation" | "console_session" | "sign_in_challenge" | "user_handle";

const PREFIX: Record<SignedKind, string> = { invitation: "kfi1", console_session: "kfc1", sign_in_challenge: "kfs1", user_handle: "kfu1" };
const FIELD = /^[A-Za-z0-9_-]{1,64}$/;
/** Canonical 32-byte tags only (the last character's 2 unused bits are zero), as for handles. */
const TAG = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;
const encoder = new TextEncoder();

async function tagOf(env: Env, body: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(env, "operator"), encoder.encode(body)));
}

export async function signFields(env: Env, kind: SignedKind, fields: string[]): Promise<string> {
  if (!fields.every((field) => FIELD.test(field))) throw new Error("signFields: a field is not a short base64url token");
  const body = [PREFIX[kind], ...fields].join(".");
  return `${body}.${base64url.encode(await tagOf(env, body))}`;
}

/** The fields, if `value` is `count` fields of this kind under a good tag (constant-time check); else null. */
export async function verifyFields(env: Env, kind: SignedKind, value: string, count: number): Promise<string[] | null> {
  if (value.length > 512) return null;
  const parts = value.split(".");
  if (parts.length !== count + 2 || parts[0] !== PREFIX[kind]) return null;
  const tag = parts.pop()!;
  const fields = parts.slice(1);
  if (!TAG.test(tag) || !fields.every((field) => FIELD.test(field))) return null;
  const valid = await crypto.subtle.verify("HMAC", await hmacKey(env, "operator"), base64url.decode(tag), encoder.encode(parts.join(".")));
  return valid ? fields : null;
}

/**
 * The WebAuthn user handle (user.id, at most 64 bytes, §5.4.3): the account and operator IDs
 * (24 bytes each) and 16 bytes of their tag. A discoverable credential returns it on sign-in, which
 * is how the worker finds the account object without an index, and a made-up one touches none.
 */
export async function signUserHandle(env: Env, accountId: string, operatorId: string): Promise<Uint8Array<ArrayBuffer>> {
  const ids = encoder.encode(`${accountId}${operatorId}`);
  const tag = (await tagOf(env, `${PREFIX.user_handle}.${accountId}.${operatorId}`)).slice(0, 16);
  const handle = new Uint8Array(ids.byteLength + tag.byteLength);
  handle.set(ids);
  handle.set(tag, ids.byteLength);
  return handle;
}

export async function verifyUserHandle(env: Env, userHandle: string): Promise<{ accountId: string; operatorId: string } | null> {
  let bytes: Uint8Array;
  try {
    bytes = base64url.decode(userHandle);
  } catch {
    return null;
  }
  if (bytes.byteLength !== 64) return null;
  const ids = new TextDecoder().decode(bytes.slice(0, 48));
  const accountId = ids.slice(0, 24);
  const operatorId = ids.slice(24);
  if (!isAccountId(accountId) || !isOperatorId(operatorId)) return null;
  const expected = await signUserHandle(env, accountId, operatorId);
  // Both are ours to compare: equal lengths, constant time.
  return crypto.subtle.timingSafeEqual(expected, bytes) ? { accountId, operatorId } : null;
}
