import { CompactEncrypt, compactDecrypt, decodeProtectedHeader } from "jose";
import { KeyferryError } from "./errors";

/**
 * Client-side vault encryption, format version 1.
 *
 * - Key: HKDF-SHA-256 (RFC 5869) over the master seed, salt = UTF-8 `keyferry/vault/v1`,
 *   info = UTF-8 `keyferry/vault/v1/aes-256-gcm`, 256 bits, imported as a non-extractable
 *   AES-GCM WebCrypto key. One key per master seed; a new format gets a new salt and info.
 * - Ciphertext: a compact JWE (RFC 7516) `{"alg":"dir","enc":"A256GCM","kf_vault":"v1","kf_vault_key":"<name>"}`
 *   with no `kid`. jose draws a random 96-bit IV for each encryption.
 * - Binding: in compact JWE the protected header is the AES-GCM additional authenticated data
 *   (RFC 7516 §5.1 step 14), so the vault key name in `kf_vault_key` is authenticated with the value.
 *   Changing the name breaks the tag (`DECRYPTION_FAILED`); moving an untouched ciphertext to another
 *   name is caught after authentication by comparing the header with the requested name
 *   (`VAULT_KEY_MISMATCH`).
 */
export const VAULT_FORMAT = "v1";
export const VAULT_HKDF_SALT = "keyferry/vault/v1";
export const VAULT_HKDF_INFO = "keyferry/vault/v1/aes-256-gcm";

const encoder = new TextEncoder();

/** Derives the vault encryption key from a master seed (already checked by `parseMasterSeed`). */
export async function deriveVaultKey(seed: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  const material = await crypto.subtle.importKey("raw", seed, "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: encoder.encode(VAULT_HKDF_SALT), info: encoder.encode(VAULT_HKDF_INFO) },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/** Encrypts `value` for the vault item `vaultKey`; returns the compact JWE the server stores. */
export async function encryptVaultValue(key: CryptoKey, vaultKey: string, value: string | Uint8Array): Promise<string> {
  const plaintext = typeof value === "string" ? encoder.encode(value) : value;
  return new CompactEncrypt(plaintext)
    .setProtectedHeader({ alg: "dir", enc: "A256GCM", kf_vault: VAULT_FORMAT, kf_vault_key: vaultKey })
    .encrypt(key);
}

/** Decrypts a vault ciphertext that is expected to belong to `vaultKey`; returns the plaintext bytes. */
export async function decryptVaultValue(key: CryptoKey, vaultKey: string, ciphertext: string): Promise<Uint8Array> {
  let header: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(ciphertext);
  } catch {
    throw new KeyferryError("DECRYPTION_FAILED", `the ciphertext of vault item "${vaultKey}" is not a compact JWE`);
  }
  if (header.kf_vault !== VAULT_FORMAT) {
    throw new KeyferryError("DECRYPTION_FAILED", `vault item "${vaultKey}" has an unknown format (not keyferry vault ${VAULT_FORMAT})`);
  }
  let plaintext: Uint8Array;
  try {
    ({ plaintext } = await compactDecrypt(ciphertext, key, {
      keyManagementAlgorithms: ["dir"],
      contentEncryptionAlgorithms: ["A256GCM"],
    }));
  } catch {
    throw new KeyferryError(
      "DECRYPTION_FAILED",
      `vault item "${vaultKey}" failed to decrypt: the ciphertext was altered or was made with another master seed`,
    );
  }
  // Authentic from here on: the header was the AAD.
  if (header.kf_vault_key !== vaultKey) {
    const other = typeof header.kf_vault_key === "string" ? `"${header.kf_vault_key}"` : "another name";
    throw new KeyferryError(
      "VAULT_KEY_MISMATCH",
      `the ciphertext stored as vault item "${vaultKey}" was encrypted for vault item ${other}; refusing to use it`,
    );
  }
  return plaintext;
}
