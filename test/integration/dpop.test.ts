import { describe, expect, it } from "vitest";
import { approve, bearer, call, newAgent, type Answer, type PollAnswer } from "./support/api";
import { ORIGIN, dpopKey, proof } from "./support/dpop";
import type { BackchannelAuthenticationBody, DeviceAuthorizationBody, TokenBody } from "../../core/wire";

/** README, "Contract notes", DPoP (RFC 9449): a bound request is delivered only to a fresh proof by its key. */
const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

const pollWith = (deviceCode: string, dpop?: string) =>
  call<PollAnswer>("POST", "/v1/credentials/poll", { json: { device_code: deviceCode }, headers: dpop ? { DPoP: dpop } : {} });

describe("DPoP-bound delivery", { timeout: 30_000 }, () => {
  it("refuses a missing proof, another key, the wrong htu or htm, a stale iat and a reused jti, consuming nothing", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const key = await dpopKey();
    const other = await dpopKey();
    const issued = (await call<Answer<DeviceAuthorizationBody>>("POST", "/v1/credentials/request", {
      headers: bearer(apiKey),
      json: { description: "Stripe", vault_key: "stripe", dpop_jkt: key.jkt },
    })).body;
    await approve(issued.user_code, operatorEmail, "sk_bound");
    const used = await proof(key);
    const refusals = {
      missing: undefined,
      otherKey: await proof(other),
      htu: await proof(key, { htu: `${ORIGIN}/oauth/token` }),
      htm: await proof(key, { htm: "GET" }),
      staleIat: await proof(key, { iat: Math.floor(Date.now() / 1000) - 120 }),
      futureIat: await proof(key, { iat: Math.floor(Date.now() / 1000) + 120 }),
      notAJwt: "x.y.z",
    };
    for (const [name, dpop] of Object.entries(refusals)) {
      const answer = await pollWith(issued.device_code, dpop);
      expect({ name, status: answer.status, error: answer.body.error }).toEqual({ name, status: 400, error: "invalid_dpop_proof" });
    }
    const delivered = await pollWith(issued.device_code, used);
    expect(delivered.status).toBe(200);
    expect(delivered.body.credential_value).toBe("sk_bound");
    // The same proof again: its jti was seen, so even within the grace window it gets no redelivery.
    expect((await pollWith(issued.device_code, used)).body.error).toBe("invalid_grant");
  });

  it("refuses a reused jti while the request is pending, and the refusal consumes nothing", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const key = await dpopKey();
    const issued = (await call<Answer<DeviceAuthorizationBody>>("POST", "/v1/credentials/request", { headers: bearer(apiKey), json: { description: "d", vault_key: "v", dpop_jkt: key.jkt } })).body;
    const first = await proof(key);
    expect((await pollWith(issued.device_code, first)).body.error).toBe("authorization_pending");
    expect((await pollWith(issued.device_code, first)).body.error).toBe("invalid_dpop_proof");
    await approve(issued.user_code, operatorEmail, "sk_after_reuse");
    expect((await pollWith(issued.device_code, await proof(key))).body.credential_value).toBe("sk_after_reuse");
  });

  it("binds by a DPoP proof at creation on /oauth/device_authorization and delivers token_type DPoP on /oauth/token", async () => {
    const { apiKey, agentId, operatorEmail } = await newAgent();
    const key = await dpopKey();
    const basic = { Authorization: `Basic ${btoa(`${agentId}:${apiKey}`)}` };
    const started = await call<Answer<DeviceAuthorizationBody>>("POST", "/oauth/device_authorization", {
      headers: { ...basic, DPoP: await proof(key, { htu: `${ORIGIN}/oauth/device_authorization` }) },
      form: { description: "GitHub", vault_key: "gh" },
    });
    expect(started.status).toBe(200);
    await approve(started.body.user_code, operatorEmail, "ghp_bound");
    const form = { grant_type: DEVICE_GRANT, device_code: started.body.device_code };
    expect((await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: basic, form })).body.error).toBe("invalid_dpop_proof");
    const token = await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: { ...basic, DPoP: await proof(key, { htu: `${ORIGIN}/oauth/token` }) }, form });
    expect(token.body).toMatchObject({ access_token: "ghp_bound", token_type: "DPoP" });
  });

  it("binds a CIBA request by dpop_jkt on /oauth/bc-authorize", async () => {
    const { apiKey, agentId } = await newAgent();
    const key = await dpopKey();
    const basic = { Authorization: `Basic ${btoa(`${agentId}:${apiKey}`)}` };
    const started = await call<Answer<BackchannelAuthenticationBody>>("POST", "/oauth/bc-authorize", { headers: basic, form: { description: "AWS", vault_key: "aws", dpop_jkt: key.jkt } });
    expect(started.status).toBe(200);
    const form = { grant_type: "urn:openid:params:grant-type:ciba", auth_req_id: started.body.auth_req_id };
    expect((await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: basic, form })).body.error).toBe("invalid_dpop_proof");
    const pending = await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: { ...basic, DPoP: await proof(key, { htu: `${ORIGIN}/oauth/token` }) }, form });
    expect(pending.body.error).toBe("authorization_pending");
  });

  it("refuses dpop_jkt that does not match the creation proof, or is malformed, and advertises its algorithms", async () => {
    const { apiKey } = await newAgent();
    const key = await dpopKey();
    const other = await dpopKey();
    const mismatch = await call<Answer<DeviceAuthorizationBody>>("POST", "/v1/credentials/request", {
      headers: { ...bearer(apiKey), DPoP: await proof(key, { htu: `${ORIGIN}/v1/credentials/request` }) },
      json: { description: "d", vault_key: "v", dpop_jkt: other.jkt },
    });
    expect(mismatch.body.error).toBe("invalid_dpop_proof");
    const malformed = await call<Answer<DeviceAuthorizationBody>>("POST", "/v1/credentials/request", { headers: bearer(apiKey), json: { description: "d", vault_key: "v", dpop_jkt: "short" } });
    expect(malformed.body).toMatchObject({ error: "invalid_request", error_description: expect.stringContaining("dpop_jkt") });
    const metadata = await call<Record<string, unknown>>("GET", "/.well-known/oauth-authorization-server");
    expect(metadata.body.dpop_signing_alg_values_supported).toContain("ES256");
  });
});
