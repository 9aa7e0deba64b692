// A new VAPID key pair (RFC 8292) in the form the worker reads: VAPID_PRIVATE_KEY is the private
// JWK as one line of JSON. Used by `npm run dev`, the deploy script and the tests.
import { generateKeyPairSync } from "node:crypto";

export function vapidKeyPair() {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const { kty, crv, x, y, d } = privateKey.export({ format: "jwk" });
  return { privateJwk: JSON.stringify({ kty, crv, x, y, d }) };
}
