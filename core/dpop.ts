/**
 * DPoP proof checking (RFC 9449 §4.3), pure but for WebCrypto: `now` is injected, algorithms are
 * pinned, the key is the one embedded in the proof. Whether the key is the request's, and whether
 * the `jti` was seen before, is the request object's business; this only says who signed what.
 */
import { EmbeddedJWK, calculateJwkThumbprint, decodeProtectedHeader, jwtVerify, type JWK } from "jose";

/** Advertised as `dpop_signing_alg_values_supported` (RFC 9449 §5.1). */
export const DPOP_ALGORITHMS = ["ES256", "ES384", "EdDSA", "RS256", "PS256"];
/** How far `iat` may be from now, either way (§11.1: a short window bounds pre-made proofs). */
export const DPOP_MAX_AGE_SECONDS = 60;
/** A JWK SHA-256 thumbprint (RFC 7638), base64url: what `dpop_jkt` carries (§10). */
export const JKT_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const MAX_PROOF_LENGTH = 8 * 1024;
const MAX_JTI_LENGTH = 256;

export type DpopProofResult = { reason: "ok"; jkt: string; jti: string; iat: number } | { reason: "invalid"; why: string };

/**
 * Checks one `DPoP` header value: a `dpop+jwt` signed by the public JWK in its own header, for this
 * method and URL (`htu` compared without query or fragment, §4.3 point 9), issued within
 * DPOP_MAX_AGE_SECONDS of `now`. `htu` lists the URLs the endpoint answers at (its public origin,
 * and the request's own where they differ).
 */
export async function checkDpopProof(proof: string, expected: { htm: string; htu: readonly string[] }, now: number): Promise<DpopProofResult> {
  if (proof.length > MAX_PROOF_LENGTH) return { reason: "invalid", why: "too long" };
  let jwk: JWK;
  let payload: Record<string, unknown>;
  try {
    const header = decodeProtectedHeader(proof);
    if (typeof header.jwk !== "object" || header.jwk === null) return { reason: "invalid", why: "no jwk header" };
    jwk = header.jwk;
    ({ payload } = await jwtVerify(proof, EmbeddedJWK, { typ: "dpop+jwt", algorithms: DPOP_ALGORITHMS, currentDate: new Date(now) }));
  } catch (error) {
    return { reason: "invalid", why: error instanceof Error ? error.name : "unreadable" };
  }
  const { htm, htu, iat, jti } = payload;
  if (htm !== expected.htm) return { reason: "invalid", why: "htm" };
  if (typeof htu !== "string" || !expected.htu.includes(withoutQuery(htu))) return { reason: "invalid", why: "htu" };
  if (typeof iat !== "number" || Math.abs(now / 1000 - iat) > DPOP_MAX_AGE_SECONDS) return { reason: "invalid", why: "iat" };
  if (typeof jti !== "string" || jti.length === 0 || jti.length > MAX_JTI_LENGTH) return { reason: "invalid", why: "jti" };
  return { reason: "ok", jkt: await calculateJwkThumbprint(jwk, "sha256"), jti, iat };
}

function withoutQuery(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return "";
  }
}
