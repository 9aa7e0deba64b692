import { compactDecrypt, exportJWK, generateKeyPair } from "jose";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { admin, call, encryptForRequest, newAgent, poll, requestCredential, type Answer } from "./support/api";
import { captureEmail, captureOutbound, decodeBody, until } from "./support/outbound";
import type { AgentCreatedBody, BackchannelAuthenticationBody, DecideAnswerBody, LookupAnswerBody, TokenBody } from "../../core/wire";

const CIBA_GRANT = "urn:openid:params:grant-type:ciba";
const basic = (id: string, secret: string) => ({ Authorization: `Basic ${btoa(`${id}:${secret}`)}` });

afterEach(() => vi.restoreAllMocks());
// Every new account emails its owner an invitation: captured from the start, since a real send through
// the local send_email binding leaves a later test's spy on it unseen.
beforeEach(() => void captureEmail());

async function approveFromEmail(emails: Array<{ raw: string }>, value: string, index = 0, vaultKey?: string) {
  // With `vaultKey`, that request's email: an earlier test's may arrive late (the outbox sends it).
  const email = await until(() => (vaultKey ? emails.find((e) => decodeBody(e.raw).includes(`Vault key:   ${vaultKey}\r\n`)) : emails[index]), "the operator's email");
  const link = decodeBody(email.raw).match(/approve#link=([\w.-]+)/)![1]!;
  const looked = await call<Answer<LookupAnswerBody>>("POST", "/v1/approvals/lookup", { json: { link_token: link } });
  const cookie = looked.headers.get("Set-Cookie")!.split(";")[0]!;
  // An end-to-end request takes only a JWE made in the browser.
  const credential = looked.body.request.public_key
    ? { credential_jwe: await encryptForRequest(looked.body.request.encryption_key, value) }
    : { credential_value: value };
  const decided = await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", {
    headers: { Cookie: cookie },
    json: { approval_token: looked.body.approval_token, decision: "approve", ...credential },
  });
  return { looked, decided };
}

describe("CIBA backchannel authentication (poll mode)", () => {
  it("notifies the operator, shows the binding message, and delivers through the CIBA grant once", async () => {
    const emails = captureEmail();
    const { apiKey, agentId, operatorEmail } = await newAgent();
    const started = await call<Answer<BackchannelAuthenticationBody>>("POST", "/oauth/bc-authorize", {
      headers: basic(agentId, apiKey),
      form: { login_hint: operatorEmail, binding_message: "Deploy 42", description: "AWS key", vault_key: "aws", scope: "openid" },
    });
    expect(started.status).toBe(200);
    expect(Object.keys(started.body).sort()).toEqual(["auth_req_id", "expires_in", "interval"]);
    expect(started.body.auth_req_id.length).toBeGreaterThan(27); // far beyond 160 bits
    const form = { grant_type: CIBA_GRANT, auth_req_id: started.body.auth_req_id };
    expect((await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: basic(agentId, apiKey), form })).body.error).toBe("authorization_pending");

    const { looked } = await approveFromEmail(emails, "AKIA-secret");
    expect(looked.body.request.binding_message).toBe("Deploy 42");
    expect(decodeBody(emails[0]!.raw)).toContain("Deploy 42");

    const token = await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: basic(agentId, apiKey), form });
    // The approval came right after the first poll: a decided request is served at once, never slow_down.
    expect(token.body).toMatchObject({ access_token: "AKIA-secret", token_type: "Bearer" });
  });

  it("delivers to the first poll after approval, and only to the agent that asked", async () => {
    const emails = captureEmail();
    const { apiKey, agentId, operatorEmail } = await newAgent();
    const other = await newAgent(operatorEmail);
    const started = await call<Answer<BackchannelAuthenticationBody>>("POST", "/oauth/bc-authorize", { headers: basic(agentId, apiKey), form: { description: "AWS key", vault_key: "aws" } });
    await approveFromEmail(emails, "AKIA-secret");
    const form = { grant_type: CIBA_GRANT, auth_req_id: started.body.auth_req_id };
    expect((await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: basic(other.agentId, other.apiKey), form })).body.error).toBe("invalid_grant");
    const token = await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: basic(agentId, apiKey), form });
    expect(token.body).toMatchObject({ access_token: "AKIA-secret", token_type: "Bearer", vault_key: "aws" });
    expect((await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: basic(agentId, apiKey), form })).body.error).toBe("invalid_grant");
    // A device-code poll cannot use an auth_req_id.
    expect((await poll(started.body.auth_req_id)).body.error).toBe("invalid_grant");
  });

  it("returns the JWE in end-to-end mode", async () => {
    const emails = captureEmail();
    const { apiKey, agentId } = await newAgent();
    const { publicKey, privateKey } = await generateKeyPair("ECDH-ES+A256KW", { crv: "P-256", extractable: true });
    const started = await call<Answer<BackchannelAuthenticationBody>>("POST", "/oauth/bc-authorize", {
      headers: basic(agentId, apiKey),
      form: { description: "d", vault_key: "e2e-v", public_key: JSON.stringify(await exportJWK(publicKey)) },
    });
    await approveFromEmail(emails, "e2e-ciba", 0, "e2e-v");
    const token = await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: basic(agentId, apiKey), form: { grant_type: CIBA_GRANT, auth_req_id: started.body.auth_req_id } });
    expect(new TextDecoder().decode((await compactDecrypt(token.body.access_token, privateKey)).plaintext)).toBe("e2e-ciba");
  });

  it("checks login_hint, binding_message and requested_expiry", async () => {
    captureEmail();
    const { apiKey, agentId } = await newAgent();
    const auth = basic(agentId, apiKey);
    const base = { description: "d", vault_key: "v" };
    const wrongUser = await call<Answer<BackchannelAuthenticationBody>>("POST", "/oauth/bc-authorize", { headers: auth, form: { ...base, login_hint: "someone@else.test" } });
    expect(wrongUser.status).toBe(400);
    expect(wrongUser.body.error).toBe("unknown_user_id");
    for (const message of ["<script>", "x".repeat(65), "line\nbreak"]) {
      const bad = await call<Answer<BackchannelAuthenticationBody>>("POST", "/oauth/bc-authorize", { headers: auth, form: { ...base, binding_message: message } });
      expect(bad.body.error).toBe("invalid_binding_message");
    }
    const short = await call<Answer<BackchannelAuthenticationBody>>("POST", "/oauth/bc-authorize", { headers: auth, form: { ...base, requested_expiry: "120" } });
    expect(short.body.expires_in).toBe(120);
    const long = await call<Answer<BackchannelAuthenticationBody>>("POST", "/oauth/bc-authorize", { headers: auth, form: { ...base, requested_expiry: "86400" } });
    expect(long.body.expires_in).toBe(600);
    expect((await call<Answer<BackchannelAuthenticationBody>>("POST", "/oauth/bc-authorize", { headers: auth, form: { ...base, requested_expiry: "soon" } })).body.error).toBe("invalid_request");
    expect((await call<Answer<BackchannelAuthenticationBody>>("POST", "/oauth/bc-authorize", { form: base })).status).toBe(401);
  });
});

describe("CIBA ping mode", () => {
  // Its retries are the account outbox's (test/integration/notifications-outbox.test.ts).
  it("POSTs {auth_req_id} with the client's notification token once decided", async () => {
    const emails = captureEmail();
    const pings = captureOutbound();
    const { accountId } = await newAgent();
    const agent = await call<Answer<AgentCreatedBody>>("POST", `/v1/admin/accounts/${accountId}/agents`, {
      headers: admin,
      json: { name: "pinged", backchannel_client_notification_endpoint: "https://hooks.example.com/ciba" },
    });
    expect(agent.body.backchannel_token_delivery_mode).toBe("ping");
    const auth = basic(agent.body.agent_id, agent.body.api_key);
    const missingToken = await call<Answer<BackchannelAuthenticationBody>>("POST", "/oauth/bc-authorize", { headers: auth, form: { description: "d", vault_key: "v" } });
    expect(missingToken.body.error_description).toContain("client_notification_token");
    const started = await call<Answer<BackchannelAuthenticationBody>>("POST", "/oauth/bc-authorize", {
      headers: auth,
      form: { description: "d", vault_key: "pinged-v", client_notification_token: "agent-callback-secret" },
    });
    await approveFromEmail(emails, "pinged-value", 0, "pinged-v");
    const delivered = await until(() => pings[0], "a ping");
    expect(delivered.headers.get("Authorization")).toBe("Bearer agent-callback-secret");
    expect(JSON.parse(delivered.body)).toEqual({ auth_req_id: started.body.auth_req_id });
    const token = await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: auth, form: { grant_type: CIBA_GRANT, auth_req_id: started.body.auth_req_id } });
    expect(token.body.access_token).toBe("pinged-value");
  });

  it("refuses a non-https notification endpoint", async () => {
    const { accountId } = await newAgent();
    const agent = await call<Answer<AgentCreatedBody>>("POST", `/v1/admin/accounts/${accountId}/agents`, {
      headers: admin,
      json: { name: "x", backchannel_client_notification_endpoint: "http://example.com/ciba" },
    });
    expect(agent.status).toBe(400);
  });
});

describe("hint: push on the JSON API", () => {
  it("shows no code, says the operator was notified, and only the link opens the request", async () => {
    const emails = captureEmail();
    const { apiKey, operatorEmail } = await newAgent();
    const issued = await requestCredential(apiKey, { hint: "push" });
    expect(issued.status).toBe(200);
    expect(issued.body.user_code).toBeUndefined();
    expect(issued.body.verification_uri).toBeUndefined();
    expect(issued.body.verification_uri_complete).toBeUndefined();
    expect(issued.body.message).toMatch(/notified/);
    const email = await until(() => emails[0], "an email");
    expect(decodeBody(email.raw)).not.toMatch(/Code:/);
    // Nobody can type a code that was never shown: even the right one finds nothing.
    const userCode = issued.body.device_code.split(".")[1]; // worker/handles.ts: kind.userCode.expiry.secret.tag
    expect((await call<Answer<LookupAnswerBody>>("POST", "/v1/approvals/lookup", { json: { user_code: userCode, email: operatorEmail } })).status).toBe(404);
    await approveFromEmail(emails, "pushed");
    expect((await poll(issued.body.device_code)).body.credential_value).toBe("pushed");
  });
});
