import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from "jose";

/**
 * A request's DPoP key (RFC 9449): made per request, its private half non-extractable, so the
 * credential is delivered only to this client even if the device code leaks (a log line, a crash dump).
 */
export interface DpopKey {
  privateKey: CryptoKey;
  publicJwk: JWK;
  /** RFC 7638 SHA-256 thumbprint of `publicJwk`, sent as `dpop_jkt` when the request is made. */
  jkt: string;
}

const ALG = "ES256";

export async function createDpopKey(): Promise<DpopKey> {
  const pair = await generateKeyPair(ALG, { extractable: false });
  const { kty, crv, x, y } = await exportJWK(pair.publicKey);
  const publicJwk: JWK = { kty, crv, x, y };
  return { privateKey: pair.privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk, "sha256") };
}

/**
 * A fresh DPoP proof for one HTTP call (RFC 9449 §4.2): `typ` dpop+jwt, the public key in the
 * header, the method and the URL without query or fragment, `iat`, and a unique `jti`.
 */
export async function dpopProof(key: DpopKey, method: string, url: string, nowMs: number): Promise<string> {
  const htu = new URL(url);
  htu.search = "";
  htu.hash = "";
  return new SignJWT({ htm: method, htu: htu.href })
    .setProtectedHeader({ alg: ALG, typ: "dpop+jwt", jwk: key.publicJwk })
    .setIssuedAt(Math.floor(nowMs / 1000))
    .setJti(crypto.randomUUID())
    .sign(key.privateKey);
}
