/**
 * Saved credentials, sealed in the operator's browser: the key is HKDF-SHA-256 (RFC 5869) over the
 * passkey's WebAuthn PRF output (WebAuthn Level 3 §10.1.4, the `prf` extension's `results.first`),
 * with the item's name in the `info`, so the server, which only ever stores the compact JWE
 * (`dir`, `A256GCM`), can neither open an item nor pass one item off as another.
 */
import { CompactEncrypt, compactDecrypt } from "jose";

const INFO_PREFIX = "keyferry saved credential v1\u0000";
const encoder = new TextEncoder();

/** A fresh PRF input for a new item: 32 random bytes, base64url (stored beside the JWE as `prf_salt`). */
export function newPrfSalt(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

/** The PRF input to evaluate for a stored `prf_salt` (the `prf.eval.first` of `navigator.credentials.get`). */
export function prfInput(prfSalt: string): Uint8Array {
  return fromBase64url(prfSalt);
}

/** The item's AES-256-GCM key: never extractable, bound to the PRF output and the item's name. */
export async function sealingKey(prfOutput: BufferSource, name: string): Promise<CryptoKey> {
  const ikm = await crypto.subtle.importKey("raw", prfOutput, "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: encoder.encode(INFO_PREFIX + name) },
    ikm,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

export function seal(value: string, key: CryptoKey): Promise<string> {
  return new CompactEncrypt(encoder.encode(value)).setProtectedHeader({ alg: "dir", enc: "A256GCM" }).encrypt(key);
}

/** The plaintext, or null when the key does not open it (another passkey, another name, a changed JWE). */
export async function unseal(jwe: string, key: CryptoKey): Promise<string | null> {
  try {
    const { plaintext } = await compactDecrypt(jwe, key, { keyManagementAlgorithms: ["dir"], contentEncryptionAlgorithms: ["A256GCM"] });
    return new TextDecoder().decode(plaintext);
  } catch {
    return null;
  }
}

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}
