import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from "jose";
import { describe, expect, it } from "vitest";
import { checkDpopProof } from "../../core/dpop";

/** RFC 9449 §4.3 checks, with `now` injected. */
const NOW = 1_700_000_000_000;
const HTU = "https://keyferry.test/oauth/token";

async function signer(alg: "ES256" | "RS256" = "ES256") {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  const sign = (claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) =>
    new SignJWT({ htm: "POST", htu: HTU, iat: NOW / 1000, jti: "j1", ...claims }).setProtectedHeader({ alg, typ: "dpop+jwt", jwk, ...header }).sign(privateKey);
  return { sign, jkt: await calculateJwkThumbprint(jwk), privateJwk: await exportJWK(privateKey) };
}

const expected = { htm: "POST", htu: [HTU] };

describe("checkDpopProof", () => {
  it("accepts a fresh proof for this method and URL and names its key and jti", async () => {
    const key = await signer();
    expect(await checkDpopProof(await key.sign(), expected, NOW)).toEqual({ reason: "ok", jkt: key.jkt, jti: "j1", iat: expect.any(Number) });
    // htu is compared without query or fragment (§4.3 point 9).
    expect((await checkDpopProof(await key.sign({ htu: `${HTU}?x=1#y` }), expected, NOW)).reason).toBe("ok");
  });

  it("refuses another method, URL, an iat over 60 s away, a missing jti, another typ and an embedded private key", async () => {
    const key = await signer();
    const bad = [
      await key.sign({ htm: "GET" }),
      await key.sign({ htu: "https://keyferry.test/v1/credentials/poll" }),
      await key.sign({ iat: NOW / 1000 - 61 }),
      await key.sign({ iat: NOW / 1000 + 61 }),
      await key.sign({ jti: undefined }),
      await key.sign({}, { typ: "JWT" }),
      await key.sign({}, { jwk: key.privateJwk }),
      "not.a.proof",
    ];
    for (const proof of bad) expect((await checkDpopProof(proof, expected, NOW)).reason).toBe("invalid");
  });

  it("refuses a symmetric algorithm, even with a key in the header", async () => {
    const key = await signer();
    const [header, payload, signature] = (await key.sign()).split(".");
    const hs = JSON.parse(atob(header!.replace(/-/g, "+").replace(/_/g, "/")));
    const forged = `${btoa(JSON.stringify({ ...hs, alg: "HS256" })).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_")}.${payload}.${signature}`;
    expect((await checkDpopProof(forged, expected, NOW)).reason).toBe("invalid");
  });
});
