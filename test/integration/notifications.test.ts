import { env, exports } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { captureEmail, captureOutbound, decodeBody, until } from "./support/outbound";
import { verifyWebhook } from "../../core/webhook-signature";
import { approvalUrl } from "../../worker/approval-link";
import { admin, auditUntil, bearer, call, lookupAs, newAgent, poll, requestCredential, type Answer } from "./support/api";
import type { AccountUpdatedBody, DecideAnswerBody, LookupAnswerBody } from "../../core/wire";

afterEach(() => vi.restoreAllMocks());
// Every new account emails its owner an invitation: captured from the start, since a real send through
// the local send_email binding leaves a later test's spy on it unseen.
beforeEach(() => void captureEmail());

const LINK = /https:\/\/keyferry\.test\/approve#link=([\w.-]+)/;

describe("operator notifications", () => {
  it("emails the operator on every request with who asks, what for and a one-click link in the fragment", async () => {
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
    expect(text).toMatch(LINK);
    expect(text).not.toContain("?link=");
  });

  it("POSTs a signed credential.requested event with its id in the body and in Keyferry-Event-Id", async () => {
    captureEmail();
    const hooks = captureOutbound(undefined, (url) => url.endsWith("/chat"));
    const { apiKey, accountId } = await newAgent();
    const patched = await call<Answer<AccountUpdatedBody>>("PATCH", `/v1/admin/accounts/${accountId}`, { headers: admin, json: { webhook_url: "https://hooks.example.com/chat" } });
    expect(patched.body.webhook_format).toBe("keyferry");
    const issued = await requestCredential(apiKey);
    expect(issued.status).toBe(200);
    const hook = await until(() => hooks[0], "a webhook");
    expect(await verifyWebhook(patched.body.webhook_secret!, hook.body, hook.headers.get("Keyferry-Signature"))).toBe(true);
    const payload = JSON.parse(hook.body);
    expect(payload).toMatchObject({
      id: expect.stringMatching(/^evt_[0-9a-f]{32}$/),
      type: "credential.requested",
      request: { account_id: accountId, description: "Stripe secret key", vault_key: "stripe-sk", agent: { name: "build-bot" } },
      approval_url: expect.stringMatching(LINK),
    });
    expect(hook.headers.get("Keyferry-Event-Id")).toBe(payload.id);
    expect(Date.parse(payload.created_at)).toBeLessThanOrEqual(Date.now());
    expect(Date.parse(payload.request.expires_at)).toBeGreaterThan(Date.now());
  });

  it("never builds an emailed link from the request's Host, and builds none without PUBLIC_BASE_URL", async () => {
    const emails = captureEmail();
    const { apiKey } = await newAgent();
    const response = await exports.default.fetch(
      new Request("https://attacker.example/v1/credentials/request", {
        method: "POST",
        headers: { ...bearer(apiKey), "Content-Type": "application/json", Host: "attacker.example", "CF-Connecting-IP": "10.9.9.9" },
        body: JSON.stringify({ description: "Host test", vault_key: "host-test" }),
      }),
    );
    expect(response.status).toBe(200);
    const text = decodeBody((await until(() => emails.find((e) => decodeBody(e.raw).includes("host-test")), "an email")).raw);
    expect(text).toMatch(LINK);
    expect(text).not.toContain("attacker.example");
    const request = { userCode: "WDJBMJHT", requestId: "req_x", expiresAt: Date.now() + 60_000 };
    expect(await approvalUrl({ ...env, PUBLIC_BASE_URL: "" }, request)).toBeNull();
    expect(await approvalUrl({ ...env, PUBLIC_BASE_URL: "https://k.example/" }, request)).toMatch(/^https:\/\/k\.example\/approve#link=[\w.-]+$/);
  });

  it("keeps the request working when the email fails, and audits the failure", async () => {
    vi.spyOn(env.EMAIL, "send").mockRejectedValue(new Error("destination address not verified"));
    const { apiKey, operatorEmail, accountId } = await newAgent();
    const issued = await requestCredential(apiKey);
    expect(issued.status).toBe(200);
    expect((await lookupAs(issued.body.user_code, operatorEmail)).status).toBe(200);
    const events = await auditUntil(accountId, (e) => e.some((x) => x.type === "notification_failed"));
    expect(events.find((x) => x.type === "notification_failed")!.detail).toMatchObject({ channel: "email", attempts: 1, status: null });
  });
});

describe("approval links", () => {
  async function linkFor(apiKey: string) {
    const emails = captureEmail();
    const vaultKey = `link-${crypto.randomUUID().slice(0, 8)}`;
    const issued = await requestCredential(apiKey, { vault_key: vaultKey });
    const email = await until(() => emails.find((e) => decodeBody(e.raw).includes(vaultKey)), "an email");
    const link = decodeBody(email.raw).match(LINK)![1]!;
    return { issued, link };
  }

  it("opens the request without an email, claims it for that browser, and approves", async () => {
    const { apiKey } = await newAgent();
    const { issued, link } = await linkFor(apiKey);
    expect((await call<Answer>("GET", `/approve#link=${link}`)).status).toBe(200); // a preview bot's GET decides nothing
    const looked = await call<Answer<LookupAnswerBody>>("POST", "/v1/approvals/lookup", { json: { link_token: link } });
    expect(looked.status).toBe(200);
    expect(looked.body.request.user_code).toBeNull();
    const cookie = looked.headers.get("Set-Cookie")!.split(";")[0]!;
    expect((await call<Answer<LookupAnswerBody>>("POST", "/v1/approvals/lookup", { json: { link_token: link } })).status).toBe(409);
    await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", { headers: { Cookie: cookie }, json: { approval_token: looked.body.approval_token, decision: "approve", credential_value: "via-link" } });
    expect((await poll(issued.body.device_code)).body.credential_value).toBe("via-link");
    expect((await call<Answer<LookupAnswerBody>>("POST", "/v1/approvals/lookup", { headers: { Cookie: cookie }, json: { link_token: link } })).status).toBe(404);
  });

  it("refuses forged and malformed links", async () => {
    const { apiKey } = await newAgent();
    const { link } = await linkFor(apiKey);
    const [h, p] = link.split(".");
    expect((await call<Answer<LookupAnswerBody>>("POST", "/v1/approvals/lookup", { json: { link_token: `${h}.${p}.AAAA` } })).status).toBe(404);
    expect((await call<Answer<LookupAnswerBody>>("POST", "/v1/approvals/lookup", { json: { link_token: "x" } })).status).toBe(404);
  });
});
