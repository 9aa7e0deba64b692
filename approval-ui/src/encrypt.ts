import { CompactEncrypt, importJWK, type JWK } from "jose";
import { CREDENTIAL_JWE_ALG, CREDENTIAL_JWE_HEADER } from "../../core/jwe";

/**
 * Encrypts the credential in the browser to the request's key, so the plaintext never leaves
 * this page: in end-to-end mode to the agent's key, otherwise to the per-request key whose private
 * half only the agent's device code unlocks.
 */
export async function encryptCredential(value: string, encryptionKey: JWK): Promise<string> {
  const key = await importJWK(encryptionKey, CREDENTIAL_JWE_ALG);
  return new CompactEncrypt(new TextEncoder().encode(value)).setProtectedHeader(CREDENTIAL_JWE_HEADER).encrypt(key);
}
