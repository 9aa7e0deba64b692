import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";

/** The origin the integration tests' worker answers at (PUBLIC_BASE_URL in vitest.config.ts). */
export const ORIGIN = "https://keyferry.test";

export interface TestDpopKey {
  privateKey: CryptoKey;
  jwk: JWK;
  jkt: string;
}

export async function dpopKey(): Promise<TestDpopKey> {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) };
}

/** A DPoP proof (RFC 9449 §4.2); by default a fresh one for polling `/v1/credentials/poll`; `waitProof` for the return channel's `GET`. */
export function proof(key: { privateKey: CryptoKey; jwk: JWK }, claims: { htm?: string; htu?: string; iat?: number; jti?: string } = {}) {
  return new SignJWT({ htm: "POST", htu: `${ORIGIN}/v1/credentials/poll`, iat: Math.floor(Date.now() / 1000), jti: crypto.randomUUID(), ...claims })
    .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: key.jwk })
    .sign(key.privateKey);
}

export const waitProof = (key: { privateKey: CryptoKey; jwk: JWK }, claims: { jti?: string } = {}) =>
  proof(key, { htm: "GET", htu: `${ORIGIN}/v1/credentials/wait`, ...claims });
