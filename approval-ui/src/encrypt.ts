import { CompactEncrypt, importJWK, type JWK } from "jose";

/** The JWE parameters every side agrees on (CONTRACT.md, `public_key`). */
const ALG = "ECDH-ES+A256KW";
const ENC = "A256GCM";

/**
 * Encrypts the credential in the browser to the request's key, so the plaintext never leaves
 * this page: in end-to-end mode to the agent's key, otherwise to the per-request key whose private
 * half only the agent's device code unlocks.
 */
export async function encryptCredential(value: string, encryptionKey: JWK): Promise<string> {
  const key = await importJWK(encryptionKey, ALG);
  return new CompactEncrypt(new TextEncoder().encode(value)).setProtectedHeader({ alg: ALG, enc: ENC }).encrypt(key);
}
