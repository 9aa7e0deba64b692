import { base64url, calculateJwkThumbprint, type JWK } from "jose";

/** RFC 4648 base32 alphabet: no lower case, easy to read aloud. */
const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const FINGERPRINT_BYTES = 10; // 80 bits: 16 base32 characters

/**
 * The short fingerprint of an agent's public key that both the agent and the approval page show,
 * so that an operator can see the page encrypts to the key their agent printed.
 * It is the RFC 7638 SHA-256 thumbprint, first 80 bits, as four groups of four base32 characters.
 */
export async function keyFingerprint(jwk: JWK): Promise<string> {
  const thumbprint = base64url.decode(await calculateJwkThumbprint(jwk, "sha256"));
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of thumbprint.subarray(0, FINGERPRINT_BYTES)) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.match(/.{4}/g)!.join("-");
}
