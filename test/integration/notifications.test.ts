import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { captureEmail, captureOutbound, decodeBody, until } from "./support/outbound";
import { verifyWebhook } from "../../core/webhook-signature";
import { admin, auditUntil, call, lookupAs, newAgent, poll, requestCredential } from "./support/api";

afterEach(() => vi.restoreAllMocks());

describe("operator notifications", () => {
  it("emails the operator on every request with who asks, what for and a one-click link", async () => {
    const emails = captureEmail();
    const { apiKey, operatorEmail, agentId } = await newAgent();
    const issued = await requestCredential(apiKey);
    const email = await until(() => emails[0], "an email");
    expect(email.to).toBe(operatorEmail);
    const text = decodeBody(email.raw);
    expect(text).toContain(agentId);
    expect(text).toContain("Stripe secret key");
    expect(text).toContain(issued.body.user_code);
    expect(text).toContain("If you did not expect this, ignore it");
    expect(text).toMatch(/https:\/\/keyferry\.test\/approve\?link=[\w.-]+/);
  });

  it("POSTs a signed webhook when the account has one", async () => {
    captureEmail();
    const hooks = captureOutbound();
    const { apiKey, accountId } = await newAgent();
    const patched = await call("PATCH", `/v1/admin/accounts/${accountId}`, { headers: admin, json: { webhook_url: "https://hooks.example.com/chat" } });
    const issued = await requestCredential(apiKey);
    expect(issued.status).toBe(200);
    const hook = await until(() => hooks[0], "a webhook");
    expect(await verifyWebhook(patched.body.webhook_secret, hook.body, hook.headers.get("Keyferry-Signature"))).toBe(true);
    const payload = JSON.parse(hook.body);
    expect(payload).toMatchObject({
      type: "credential.requested",
      request: { account_id: accountId, description: "Stripe secret key", vault_key: "stripe-sk", agent: { name: "build-bot" } },
      approval_url: expect.stringMatching(/^https:\/\/keyferry\.test\/approve\?link=/),
    });
    expect(Date.parse(payload.request.expires_at)).toBeGreaterThan(Date.now());
  });

  it("retries a failing webhook with backoff; a refused one is audited and never fails the request", async () => {
    captureEmail();
    const hooks = captureOutbound((_r, attempt) => new Response("busy", { status: attempt === 1 ? 503 : 200 }));
    const { apiKey, accountId } = await newAgent();
    await call("PATCH", `/v1/admin/accounts/${accountId}`, { headers: admin, json: { webhook_url: "https://hooks.example.com/flaky" } });
    await requestCredential(apiKey);
    await until(() => (hooks.length >= 2 ? hooks : undefined), "a retried webhook");
    expect(hooks[0]!.body).toBe(hooks[1]!.body);
    // A 4xx is final: no retries, one audited failure.
    const refusing = captureOutbound(() => new Response("gone", { status: 410 }));
    await call("PATCH", `/v1/admin/accounts/${accountId}`, { headers: admin, json: { webhook_url: "https://hooks.example.com/gone" } });
    expect((await requestCredential(apiKey)).status).toBe(200);
    const events = await auditUntil(accountId, (e) => e.some((x) => x.type === "notification_failed"));
    expect(events.find((x) => x.type === "notification_failed")!.detail).toEqual({ channel: "webhook", attempts: 1, status: 410 });
    expect(refusing.filter((h) => h.url.endsWith("/gone"))).toHaveLength(1);
  });

  it("keeps the request working when the email fails, and audits the failure", async () => {
    vi.spyOn(env.EMAIL, "send").mockRejectedValue(new Error("destination address not verified"));
    const { apiKey, operatorEmail, accountId } = await newAgent();
    const issued = await requestCredential(apiKey);
    expect(issued.status).toBe(200);
    expect((await lookupAs(issued.body.user_code, operatorEmail)).status).toBe(200);
    const events = await auditUntil(accountId, (e) => e.some((x) => x.type === "notification_failed"));
    expect(events.find((x) => x.type === "notification_failed")!.detail).toEqual({ channel: "email" });
  });
});

describe("approval links", () => {
  async function linkFor(apiKey: string, body: Record<string, unknown> = {}) {
    const emails = captureEmail();
    const issued = await requestCredential(apiKey, body);
    const email = await until(() => emails[0], "an email");
    const link = decodeBody(email.raw).match(/approve\?link=([\w.-]+)/)![1]!;
    return { issued, link };
  }

  it("opens the request without an email, claims it for that browser, and approves", async () => {
    const { apiKey } = await newAgent();
    const { issued, link } = await linkFor(apiKey);
    expect((await call("GET", `/approve?link=${link}`)).status).toBe(200); // a preview bot's GET decides nothing
    const looked = await call("POST", "/v1/approvals/lookup", { json: { link_token: link } });
    expect(looked.status).toBe(200);
    expect(looked.body.request.user_code).toBeNull();
    const cookie = looked.headers.get("Set-Cookie")!.split(";")[0]!;
    expect((await call("POST", "/v1/approvals/lookup", { json: { link_token: link } })).status).toBe(409);
    await call("POST", "/v1/approvals/decide", { headers: { Cookie: cookie }, json: { approval_token: looked.body.approval_token, decision: "approve", credential_value: "via-link" } });
    expect((await poll(issued.body.device_code)).body.credential_value).toBe("via-link");
    expect((await call("POST", "/v1/approvals/lookup", { headers: { Cookie: cookie }, json: { link_token: link } })).status).toBe(404);
  });

  it("refuses forged and malformed links", async () => {
    const { apiKey } = await newAgent();
    const { link } = await linkFor(apiKey);
    const [h, p] = link.split(".");
    expect((await call("POST", "/v1/approvals/lookup", { json: { link_token: `${h}.${p}.AAAA` } })).status).toBe(404);
    expect((await call("POST", "/v1/approvals/lookup", { json: { link_token: "x" } })).status).toBe(404);
  });
});
