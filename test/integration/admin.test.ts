import { describe, expect, it } from "vitest";
import { admin, auditUntil, bearer, call, lookupAs, newAgent, poll, requestCredential, type Answer } from "./support/api";
import type { AccountBody, AccountUpdatedBody, AgentCreatedBody, DecideAnswerBody, LookupAnswerBody, VaultListBody } from "../../core/wire";

describe("admin API", () => {
  it("refuses a missing or wrong admin token with 401 invalid_token", async () => {
    for (const headers of [{}, { Authorization: "Bearer wrong" }, { Authorization: "Basic dGVzdDp0ZXN0" }, { Authorization: "Bearer" }]) {
      const answer = await call<Answer<AccountBody>>("POST", "/v1/admin/accounts", { headers, json: { name: "A", operator_email: "a@example.com" } });
      expect(answer.status).toBe(401);
      expect(answer.body.error).toBe("invalid_token");
    }
  });

  it("creates accounts and agents; the API key is shown once", async () => {
    const account = await call<Answer<AccountBody>>("POST", "/v1/admin/accounts", { headers: admin, json: { name: "Acme", operator_email: "ops@acme.test" } });
    expect(account.status).toBe(201);
    expect(account.body).toEqual({
      account_id: expect.stringMatching(/^acc_/),
      name: "Acme",
      operator_email: "ops@acme.test",
      operator_id: expect.stringMatching(/^opr_/),
      invitation_url: expect.stringMatching(/^https:\/\/keyferry\.test\/console#invite=kfi1\./),
    });
    const agent = await call<Answer<AgentCreatedBody>>("POST", `/v1/admin/accounts/${account.body.account_id}/agents`, { headers: admin, json: { name: "bot" } });
    expect(agent.status).toBe(201);
    expect(agent.body).toEqual({
      agent_id: expect.stringMatching(/^agt_/),
      api_key: expect.stringMatching(/^kf1\./),
      name: "bot",
      email: null,
      account_id: account.body.account_id,
    });
    const fetched = await call<Answer<AccountUpdatedBody>>("GET", `/v1/admin/accounts/${account.body.account_id}`, { headers: admin });
    expect(JSON.stringify(fetched.body)).not.toContain(agent.body.api_key);
  });

  it("validates bodies and names the field", async () => {
    const cases: Array<[unknown, string]> = [
      [{ name: "A" }, "operator_email"],
      [{ name: "A", operator_email: "not-an-email" }, "operator_email"],
      [{ name: "", operator_email: "a@example.com" }, "name"],
      [{ name: 42, operator_email: "a@example.com" }, "name"],
    ];
    for (const [json, field] of cases) {
      const answer = await call<Answer<AccountBody>>("POST", "/v1/admin/accounts", { headers: admin, json });
      expect(answer.status).toBe(400);
      expect(answer.body.error_description).toContain(field);
    }
  });

  it("answers 404 for unknown accounts and agents", async () => {
    expect((await call<Answer>("POST", "/v1/admin/accounts/acc_nope/agents", { headers: admin, json: { name: "x" } })).status).toBe(404);
    expect((await call("POST", `/v1/admin/accounts/acc_${"a".repeat(20)}/agents`, { headers: admin, json: { name: "x" } })).status).toBe(404);
    // Every admin RPC on an account that does not exist is the same 404 in the error shape.
    const unknown = `/v1/admin/accounts/acc_${"c".repeat(20)}`;
    for (const [method, path, json] of [
      ["GET", unknown, undefined],
      ["PATCH", unknown, { operator_email: "x@example.com" }],
      ["GET", `${unknown}/audit`, undefined],
      ["POST", `${unknown}/agents`, { name: "x" }],
    ] as const) {
      const answer = await call(method, path, { headers: admin, ...(json ? { json } : {}) });
      expect([answer.status, answer.body], `${method} ${path}`).toEqual([404, { error: "not_found", error_description: "No such account." }]);
    }
    const { accountId } = await newAgent();
    expect((await call("DELETE", `/v1/admin/accounts/${accountId}/agents/agt_${"b".repeat(20)}`, { headers: admin })).status).toBe(404);
  });

  it("revokes an agent at once: its key stops working and its active requests end", async () => {
    const { apiKey, accountId, agentId, operatorEmail } = await newAgent();
    const issued = await requestCredential(apiKey);
    expect((await call<Answer>("DELETE", `/v1/admin/accounts/${accountId}/agents/${agentId}`, { headers: admin })).status).toBe(204);
    const refused = await requestCredential(apiKey);
    expect(refused.status).toBe(401);
    expect(refused.body.error).toBe("invalid_client");
    expect((await call<Answer<VaultListBody>>("GET", "/v1/vault", { headers: bearer(apiKey) })).status).toBe(401);
    expect((await poll(issued.body.device_code)).body.error).toBe("access_denied");
    expect((await lookupAs(issued.body.user_code, operatorEmail)).status).toBe(404);
  });

  it("updates the operator email and webhook; the webhook secret is returned once", async () => {
    const { accountId } = await newAgent();
    const updated = await call<Answer<AccountUpdatedBody>>("PATCH", `/v1/admin/accounts/${accountId}`, {
      headers: admin,
      json: { operator_email: "new@example.com", webhook_url: "https://hooks.example.com/keyferry" },
    });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ account_id: accountId, operator_email: "new@example.com", webhook_url: "https://hooks.example.com/keyferry" });
    expect(updated.body.webhook_secret).toMatch(/^whsec_/);
    const again = await call<Answer<AccountUpdatedBody>>("GET", `/v1/admin/accounts/${accountId}`, { headers: admin });
    // The whole body, so a field renamed between the object and the wire is caught.
    expect(again.body).toEqual({
      account_id: accountId,
      name: expect.any(String),
      operator_email: "new@example.com",
      webhook_url: "https://hooks.example.com/keyferry",
      webhook_format: "keyferry",
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      approval_policy: { approvals_required: 1 },
    });
    expect(Object.keys(updated.body).sort()).toEqual([...Object.keys(again.body), "webhook_secret"].sort());
    const http = await call<Answer<AccountUpdatedBody>>("PATCH", `/v1/admin/accounts/${accountId}`, { headers: admin, json: { webhook_url: "http://hooks.example.com/" } });
    expect(http.status).toBe(400);
    expect(http.body.error_description).toContain("webhook_url");
  });

  it("keeps an audit log, newest first: requested, looked up, failed attempt, approved by whom from where, delivered", async () => {
    const { apiKey, accountId, operatorEmail } = await newAgent();
    const issued = await requestCredential(apiKey);
    await lookupAs(issued.body.user_code, "wrong@example.com");
    const looked = await call<Answer<LookupAnswerBody>>("POST", "/v1/approvals/lookup", {
      headers: { "CF-Connecting-IP": "203.0.113.7", "User-Agent": "OperatorPhone/1.0" },
      json: { user_code: issued.body.user_code, email: operatorEmail },
    });
    const cookie = looked.headers.get("Set-Cookie")!.split(";")[0]!;
    await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", {
      headers: { Cookie: cookie, "CF-Connecting-IP": "203.0.113.7", "User-Agent": "OperatorPhone/1.0" },
      json: { approval_token: looked.body.approval_token, decision: "approve", credential_value: "sk_audit_secret" },
    });
    await poll(issued.body.device_code);
    const events = await auditUntil(accountId, (e) => e.some((x) => x.type === "delivered"));
    const types = events.map((e) => e.type);
    expect(types.indexOf("delivered")).toBeLessThan(types.indexOf("approved"));
    expect(types).toEqual(expect.arrayContaining(["requested", "attempt_failed", "looked_up", "approved", "delivered", "agent_created", "account_created"]));
    expect(events.find((e) => e.type === "approved")).toMatchObject({
      // No passkey in this account: the email binding, with the passkey fields null.
      actor: { operator_id: null, email: operatorEmail, passkey_id: null, aaguid: null, user_verified: null, ip: "203.0.113.7", user_agent: "OperatorPhone/1.0" },
      request_id: expect.stringMatching(/^req_/),
      detail: { ip: "203.0.113.7", user_agent: "OperatorPhone/1.0" },
    });
    expect(events.find((e) => e.type === "account_created")).toEqual({ at: expect.any(String), type: "account_created", actor: "admin" });
    expect(events.find((e) => e.type === "agent_created")).toEqual({ at: expect.any(String), type: "agent_created", agent_id: expect.stringMatching(/^agt_/), actor: "admin" });
    expect(JSON.stringify(events)).not.toContain("sk_audit_secret");
    for (const event of events) expect(Number.isNaN(Date.parse(event.at))).toBe(false);
  });
});
