// The SDK's side of "Nothing lost to a dropped response" (README): a delivering poll whose answer is
// lost is retried, and a key-bound delivery is acknowledged with a DPoP proof by the request's key.
import { decodeJwt, decodeProtectedHeader } from "jose";
import { describe, expect, it } from "vitest";
import { createClient } from "../../sdk/src/index";
import { type Exchange, fakeClock, fakeFetch, json, oauthError } from "./sdk-fakes";

const BASE_URL = "https://keyferry.test";
const DEVICE_CODE = "dc_test_secret";
const REQUEST = { description: "Stripe key", vaultKey: "stripe", endToEnd: false };
const delivered = () => json(200, { vault_key: "stripe", description: "Stripe key", credential_value: "sk_kept" });
const offline = () => Promise.reject(new TypeError("fetch failed"));

/** A fake API whose polls answer `polls` in turn, and whose ack answers `ack`. */
function agent(polls: Array<() => Response | Promise<Response>>, ack: () => Response | Promise<Response> = () => new Response(null, { status: 204 })) {
  const clock = fakeClock();
  let n = 0;
  const api = fakeFetch(({ path }: Exchange) => {
    if (path === "/v1/credentials/request") {
      return json(200, { device_code: DEVICE_CODE, user_code: "WDJB-MJHT", verification_uri: `${BASE_URL}/approve`, expires_in: 600, interval: 1 });
    }
    if (path === "/v1/credentials/poll") return polls[Math.min(n++, polls.length - 1)]!();
    if (path === "/v1/credentials/ack") return ack();
    return oauthError("not_found", 404);
  });
  const ferry = createClient({ baseUrl: BASE_URL, apiKey: "kf_agent", fetch: api.fetch, now: clock.now, sleep: clock.sleep });
  const sent = (path: string) => api.exchanges.filter((e) => e.path === path);
  return { ferry, sent };
}

describe("acknowledging a key-bound delivery", () => {
  it("retries a delivering poll whose answer was lost, then acknowledges with a proof by the request's key", async () => {
    const { ferry, sent } = agent([offline, delivered]);
    const req = await ferry.credentials.request(REQUEST);
    expect((await ferry.credentials.waitForApproval(req.deviceCode)).credentialValue).toBe("sk_kept");
    const polls = sent("/v1/credentials/poll");
    const [ack, ...more] = sent("/v1/credentials/ack");
    expect(polls).toHaveLength(2);
    expect(more).toHaveLength(0);
    expect(ack!.body).toEqual({ device_code: DEVICE_CODE });
    const proof = ack!.headers.get("dpop")!;
    expect(decodeJwt(proof)).toMatchObject({ htm: "POST", htu: `${BASE_URL}/v1/credentials/ack` });
    // The same key as the polls' proofs: the one the request was bound to.
    expect(decodeProtectedHeader(proof).jwk).toEqual(decodeProtectedHeader(polls[1]!.headers.get("dpop")!).jwk);
    // Acknowledged, the key is gone: acknowledging again sends nothing.
    await ferry.credentials.acknowledge(req.deviceCode);
    expect(sent("/v1/credentials/ack")).toHaveLength(1);
  });

  it("with acknowledge: false, sends nothing until the caller acknowledges", async () => {
    const { ferry, sent } = agent([delivered]);
    const req = await ferry.credentials.request(REQUEST);
    await ferry.credentials.waitForApproval(req.deviceCode, { acknowledge: false });
    expect(sent("/v1/credentials/ack")).toHaveLength(0);
    await ferry.credentials.acknowledge(req.deviceCode);
    expect(sent("/v1/credentials/ack")).toHaveLength(1);
  });

  it("still returns the credential when the acknowledgement fails, and reports it to an explicit caller", async () => {
    const { ferry, sent } = agent([delivered], offline);
    const req = await ferry.credentials.request(REQUEST);
    expect((await ferry.credentials.waitForApproval(req.deviceCode)).credentialValue).toBe("sk_kept");
    expect(sent("/v1/credentials/ack")).toHaveLength(1);

    const explicit = agent([delivered], () => oauthError("invalid_dpop_proof"));
    const req2 = await explicit.ferry.credentials.request(REQUEST);
    await explicit.ferry.credentials.waitForApproval(req2.deviceCode, { acknowledge: false });
    await expect(explicit.ferry.credentials.acknowledge(req2.deviceCode)).rejects.toMatchObject({ code: "SERVER_ERROR", serverError: "invalid_dpop_proof" });
  });

  it("sends nothing for an unbound request: the server kept nothing", async () => {
    const { ferry, sent } = agent([delivered]);
    const req = await ferry.credentials.request({ ...REQUEST, dpop: false });
    await ferry.credentials.waitForApproval(req.deviceCode);
    await ferry.credentials.acknowledge(req.deviceCode);
    expect(sent("/v1/credentials/ack")).toHaveLength(0);
  });
});
