/**
 * Encryption at rest for plain-mode requests (DESIGN.md). The operator approves without the device
 * code, so the payload is encrypted to a per-request ECDH key pair instead; its private half is
 * stored only as a JWE under a key derived (HKDF) from the device-code secret, which the service
 * does not keep. Only a poll holding the device code can open the payload.
 */
import { CompactEncrypt, compactDecrypt, exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import { CREDENTIAL_JWE_ALG, CREDENTIAL_JWE_ENC, CREDENTIAL_JWE_HEADER } from "../core/jwe";

const WRAP_INFO = new TextEncoder().encode("keyferry/request-key-wrap/v1");

async function wrappingKey(deviceSecret: Uint8Array): Promise<CryptoKey> {
  const material = await crypto.subtle.importKey("raw", deviceSecret, "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info: WRAP_INFO },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/** A fresh request key pair: the public JWK to encrypt to, and the private JWK wrapped for storage. */
export async function createRequestKeyPair(deviceSecret: Uint8Array): Promise<{ publicJwk: JWK; wrappedPrivateKey: string }> {
  const { publicKey, privateKey } = await generateKeyPair(CREDENTIAL_JWE_ALG, { crv: "P-256", extractable: true });
  const [publicJwk, privateJwk] = await Promise.all([exportJWK(publicKey), exportJWK(privateKey)]);
  const wrappedPrivateKey = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(privateJwk)))
    .setProtectedHeader({ alg: "dir", enc: "A256GCM" })
    .encrypt(await wrappingKey(deviceSecret));
  return { publicJwk, wrappedPrivateKey };
}

/** Opens a stored payload with the private key unwrapped from the device-code secret. */
export async function openPayload(jwe: string, wrappedPrivateKey: string, deviceSecret: Uint8Array): Promise<string> {
  const { plaintext: privateJwk } = await compactDecrypt(wrappedPrivateKey, await wrappingKey(deviceSecret), {
    keyManagementAlgorithms: ["dir"],
    contentEncryptionAlgorithms: ["A256GCM"],
  });
  const privateKey = await importJWK(JSON.parse(new TextDecoder().decode(privateJwk)) as JWK, CREDENTIAL_JWE_ALG);
  const { plaintext } = await compactDecrypt(jwe, privateKey, {
    keyManagementAlgorithms: [CREDENTIAL_JWE_ALG],
    contentEncryptionAlgorithms: [CREDENTIAL_JWE_ENC],
  });
  return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(plaintext);
}

/** Encrypts a value to a request's public key, as the approval page does in the browser. */
export async function encryptToKey(value: string, publicJwk: JWK): Promise<string> {
  const key = await importJWK(publicJwk, CREDENTIAL_JWE_ALG);
  return new CompactEncrypt(new TextEncoder().encode(value)).setProtectedHeader(CREDENTIAL_JWE_HEADER).encrypt(key);
}

/** True when WebCrypto accepts the JWK as an ECDH public key (a point on the curve). */
export async function isUsablePublicKey(jwk: JWK): Promise<boolean> {
  try {
    await importJWK(jwk, CREDENTIAL_JWE_ALG);
    return true;
  } catch {
    return false;
  }
}
