// Key-bound delivery in the SDK (RFC 9449, sdk/README.md, "credentials.request()"): every request is bound to
// a fresh ES256 key by default, its thumbprint sent as dpop_jkt, and every poll carries a fresh
// proof by that key; a refused proof consumes nothing and is reported as such.
import { EmbeddedJWK, calculateJwkThumbprint, decodeProtectedHeader, jwtVerify, type JWK } from "jose";
import { describe, expect, it } from "vitest";
import { createDpopKey } from "../../sdk/src/dpop";
import { createClient } from "../../sdk/src/index";
import { failure, fakeClock, fakeFetch, json, oauthError, type Exchange } from "./sdk-fakes";

const BASE_URL = "https://keyferry.test/prefix";
const REQUEST = { description: "Stripe key", vaultKey: "stripe-sk", endToEnd: false };

function agent(answers: Array<() => Response>) {
  const clock = fakeClock();
  const polls: Exchange[] = [];
  const requests: Exchange[] = [];
  let n = 0;
  const api = fakeFetch((exchange) => {
    if (exchange.path === "/prefix/v1/credentials/request") {
      requests.push(exchange);
      return json(200, { device_code: `dc-${requests.length}`, user_code: "WDJB-MJHT", verification_uri: "https://keyferry.test/approve", expires_in: 600, interval: 1 });
    }
    // The acknowledgement after a delivery is not a poll (sdk-acknowledge.test.ts).
    if (exchange.path !== "/prefix/v1/credentials/poll") return oauthError("not_found", 404);
    polls.push(exchange);
    return answers[Math.min(n++, answers.length - 1)]!();
  });
  const ferry = createClient({ baseUrl: BASE_URL, apiKey: "kf_agent", fetch: api.fetch, now: clock.now, sleep: clock.sleep });
  return { ferry, clock, polls, requests };
}

const pending = () => oauthError("authorization_pending");
const delivered = () => json(200, { vault_key: "stripe-sk", description: "Stripe key", credential_value: "sk_live_1" });

describe("sdk DPoP binding", () => {
  it("makes a non-extractable ES256 key per request", async () => {
    const key = await createDpopKey();
    expect(key.privateKey.extractable).toBe(false);
    expect(key.privateKey.algorithm).toMatchObject({ name: "ECDSA", namedCurve: "P-256" });
    expect(Object.keys(key.publicJwk).sort()).toEqual(["crv", "kty", "x", "y"]);
    expect(key.jkt).toBe(await calculateJwkThumbprint(key.publicJwk, "sha256"));
  });

  it("sends dpop_jkt at creation and a fresh proof by that key on every poll", async () => {
    const { ferry, clock, polls, requests } = agent([pending, pending, delivered]);
    const req = await ferry.credentials.request(REQUEST);
    await ferry.credentials.request(REQUEST);
    const [first, second] = requests.map((r) => (r.body as { dpop_jkt?: string }).dpop_jkt);
    expect(first).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(second).not.toBe(first); // one key per request

    expect((await ferry.credentials.waitForApproval(req.deviceCode)).credentialValue).toBe("sk_live_1");
    expect(polls).toHaveLength(3);
    const jtis = new Set<string>();
    for (const poll of polls) {
      const proof = poll.headers.get("dpop")!;
      const header = decodeProtectedHeader(proof);
      expect(header).toMatchObject({ alg: "ES256", typ: "dpop+jwt" });
      expect((header.jwk as JWK).d).toBeUndefined();
      expect(await calculateJwkThumbprint(header.jwk as JWK, "sha256")).toBe(first);
      const { payload } = await jwtVerify(proof, EmbeddedJWK, { typ: "dpop+jwt", algorithms: ["ES256"], currentDate: new Date(clock.now()) });
      // RFC 9449 §4.2: htu is the polled URL without query or fragment.
      expect(payload).toMatchObject({ htm: "POST", htu: "https://keyferry.test/prefix/v1/credentials/poll" });
      expect(payload.iat).toBeLessThanOrEqual(Math.floor(clock.now() / 1000));
      jtis.add(payload.jti as string);
      expect(poll.headers.get("authorization")).toBeNull();
    }
    expect(jtis.size).toBe(3);
  });

  it("binds nothing with dpop: false", async () => {
    const { ferry, polls, requests } = agent([delivered]);
    const req = await ferry.credentials.request({ ...REQUEST, dpop: false });
    expect(requests[0]!.body).not.toHaveProperty("dpop_jkt");
    await ferry.credentials.waitForApproval(req.deviceCode);
    expect(polls[0]!.headers.get("dpop")).toBeNull();
  });

  it("reports a refused proof as INVALID_DPOP_PROOF and keeps the request, so a later wait can collect it", async () => {
    const { ferry } = agent([() => oauthError("invalid_dpop_proof"), delivered]);
    const req = await ferry.credentials.request(REQUEST);
    const error = await failure(ferry.credentials.waitForApproval(req.deviceCode));
    expect(error.code).toBe("INVALID_DPOP_PROOF");
    expect(error.message).not.toContain(req.deviceCode);
    expect((await ferry.credentials.waitForApproval(req.deviceCode)).credentialValue).toBe("sk_live_1");
  });

  it("says MISSING_KEY when waiting on a bound request another client made", async () => {
    const { ferry, polls } = agent([() => oauthError("invalid_dpop_proof")]);
    expect((await failure(ferry.credentials.waitForApproval("someone-elses-code"))).code).toBe("MISSING_KEY");
    expect(polls[0]!.headers.get("dpop")).toBeNull();
  });
});
