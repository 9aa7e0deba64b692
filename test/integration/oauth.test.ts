import { describe, expect, it } from "vitest";
import { approve, call, newAgent, requestCredential, type Answer } from "./support/api";
import type { DeviceAuthorizationBody, TokenBody } from "../../core/wire";

const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
const basic = (id: string, secret: string) => ({ Authorization: `Basic ${btoa(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`)}` });

describe("OAuth surface", () => {
  it("publishes RFC 8414 metadata on the request's origin", async () => {
    const meta = await call<Record<string, unknown>>("GET", "/.well-known/oauth-authorization-server");
    expect(meta.status).toBe(200);
    expect(meta.body).toMatchObject({
      issuer: "https://keyferry.test",
      device_authorization_endpoint: "https://keyferry.test/oauth/device_authorization",
      token_endpoint: "https://keyferry.test/oauth/token",
      backchannel_authentication_endpoint: "https://keyferry.test/oauth/bc-authorize",
      grant_types_supported: [DEVICE_GRANT, "urn:openid:params:grant-type:ciba"],
      token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
      backchannel_token_delivery_modes_supported: ["poll", "ping"],
    });
  });

  it("runs the device grant with client_secret_basic and client_secret_post", async () => {
    const { apiKey, agentId, operatorEmail } = await newAgent();
    for (const auth of ["basic", "post"] as const) {
      const clientAuth = auth === "basic" ? { headers: basic(agentId, apiKey), extra: {} } : { headers: {}, extra: { client_id: agentId, client_secret: apiKey } };
      const started = await call<Answer<DeviceAuthorizationBody>>("POST", "/oauth/device_authorization", {
        headers: clientAuth.headers,
        form: { ...clientAuth.extra, description: "GitHub token", vault_key: "gh-token", scope: "ignored" },
      });
      expect(started.status).toBe(200);
      expect(Object.keys(started.body).sort()).toEqual(["device_code", "expires_in", "interval", "message", "user_code", "verification_uri", "verification_uri_complete"]);
      const pending = await call<Answer<TokenBody>>("POST", "/oauth/token", {
        headers: clientAuth.headers,
        form: { ...clientAuth.extra, grant_type: DEVICE_GRANT, device_code: started.body.device_code },
      });
      expect(pending.status).toBe(400);
      expect(pending.body.error).toBe("authorization_pending");
      await approve(started.body.user_code, operatorEmail, `ghp_${auth}`);
      // The approval came right after the first poll: a decided request is served at once, never slow_down.
      const early = await call<Answer<TokenBody>>("POST", "/oauth/token", {
        headers: clientAuth.headers,
        form: { ...clientAuth.extra, grant_type: DEVICE_GRANT, device_code: started.body.device_code },
      });
      expect(early.body.access_token).toBe(`ghp_${auth}`);
    }
  });

  it("delivers the credential as a Bearer access token to the agent that asked, and only to it", async () => {
    const owner = await newAgent();
    const other = await newAgent();
    const started = await call<Answer<DeviceAuthorizationBody>>("POST", "/oauth/device_authorization", {
      headers: basic(owner.agentId, owner.apiKey),
      form: { description: "GitHub token", vault_key: "gh-token" },
    });
    await approve(started.body.user_code, owner.operatorEmail, "ghp_secret");
    const form = { grant_type: DEVICE_GRANT, device_code: started.body.device_code };

    const stranger = await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: basic(other.agentId, other.apiKey), form });
    expect(stranger.status).toBe(400);
    expect(stranger.body.error).toBe("invalid_grant");
    const wrongSecret = await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: basic(owner.agentId, other.apiKey), form });
    expect(wrongSecret.status).toBe(401);
    expect(wrongSecret.body.error).toBe("invalid_client");

    const token = await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: basic(owner.agentId, owner.apiKey), form });
    expect(token.status).toBe(200);
    // Exactly the wire's TokenBody: the credential as the access token, and nothing else.
    const expected: TokenBody = { access_token: "ghp_secret", token_type: "Bearer", issued_token_type: "urn:keyferry:params:oauth:token-type:credential", vault_key: "gh-token" };
    expect(token.body).toEqual(expected);
    expect(token.headers.get("Cache-Control")).toContain("no-store");
    expect((await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: basic(owner.agentId, owner.apiKey), form })).body.error).toBe("invalid_grant");
  });

  it("answers client and grant errors as RFC 6749 §5.2 says", async () => {
    const { apiKey, agentId } = await newAgent();
    const noAuth = await call<Answer<TokenBody>>("POST", "/oauth/token", { form: { grant_type: DEVICE_GRANT, device_code: "x" } });
    expect(noAuth.status).toBe(401);
    expect(noAuth.body.error).toBe("invalid_client");
    const forgedKey = await call<Answer<TokenBody>>("POST", "/oauth/token", {
      headers: basic(agentId, `${apiKey.slice(0, -4)}AAAA`),
      form: { grant_type: DEVICE_GRANT, device_code: "x" },
    });
    expect(forgedKey.status).toBe(401);
    const unknownGrant = await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: basic(agentId, apiKey), form: { grant_type: "password" } });
    expect(unknownGrant.body.error).toBe("unsupported_grant_type");
    const noCode = await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: basic(agentId, apiKey), form: { grant_type: DEVICE_GRANT } });
    expect(noCode.body).toMatchObject({ error: "invalid_request", error_description: expect.stringContaining("device_code") });
    const json = await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: basic(agentId, apiKey), json: { grant_type: DEVICE_GRANT } });
    expect(json.status).toBe(415);
    const noDescription = await call<Answer<DeviceAuthorizationBody>>("POST", "/oauth/device_authorization", { headers: basic(agentId, apiKey), form: { vault_key: "k" } });
    expect(noDescription.body.error_description).toContain("description");
    const badKey = await call<Answer<DeviceAuthorizationBody>>("POST", "/oauth/device_authorization", {
      headers: basic(agentId, apiKey),
      form: { description: "d", vault_key: "k", public_key: "{not json" },
    });
    expect(badKey.body.error_description).toContain("public_key");
  });

  it("accepts the public_key extension parameter as a JSON string", async () => {
    const { apiKey, agentId } = await newAgent();
    const { publicKey } = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]) as CryptoKeyPair;
    const jwk = await crypto.subtle.exportKey("jwk", publicKey) as JsonWebKey;
    const started = await call<Answer<DeviceAuthorizationBody>>("POST", "/oauth/device_authorization", {
      headers: basic(agentId, apiKey),
      form: { description: "d", vault_key: "k", public_key: JSON.stringify({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }) },
    });
    expect(started.status).toBe(200);
  });
});
