// N-of-M approval in real Chromium against a real `wrangler dev` (README, "Approval policies (N-of-M)"):
// two operators, each in their own browser context with their own CDP virtual authenticator, enrol
// from their invitations. The owner approves an agent's request in the console with the credential;
// the agent's poll stays pending and its return channel (the SDK's wait, and a raw socket) stays
// silent; the second operator sees "1 of 2", approves with no credential field (in the console, or on
// the approval page); the agent receives the value; the audit lists both approvers.
import { randomBytes } from "node:crypto";
import type { BrowserContext, Locator, Page } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { createClient } from "../../sdk/src/index";
import { pollCredential } from "./support/approval";
import { api, browserAvailable } from "./support/dev-server";
import { useBrowser } from "./support/use-browser";
import { useDevServer } from "./support/use-dev-server";
import { openWaitSocket } from "./support/wait-socket";

const eventually = <T>(read: () => T | Promise<T>) => expect.poll(read, { timeout: 20_000, interval: 100 });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const requestItem = (page: Page, vaultKey: string): Locator => page.locator("li.request", { hasText: vaultKey });

describe.skipIf(!browserAvailable())("two operators approve one request", () => {
  const server = useDevServer({ publicHost: "localhost", vars: { POLL_INTERVAL_SECONDS: "1" } });
  const browser = useBrowser();
  const contexts: BrowserContext[] = [];
  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => {});
  });

  /** A browser context with its own platform authenticator (resident keys, user verification), enrolled from `invitationUrl`. */
  async function operatorConsole(invitationUrl: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    contexts.push(context);
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    await page.goto(invitationUrl);
    await page.getByRole("button", { name: /passkey/i }).click();
    await eventually(() => page.getByRole("heading", { name: "Pending requests" }).isVisible()).toBe(true);
    await eventually(() => page.locator("#live-state").textContent()).toContain("Live");
    return page;
  }

  /** An account with the policy, its owner and a second operator each enrolled in their own browser, and an agent. */
  async function twoOperatorAccount() {
    const admin = { authorization: `Bearer ${server.adminToken}` };
    const ownerEmail = `owner-${randomBytes(4).toString("hex")}@example.com`;
    const approverEmail = `approver-${randomBytes(4).toString("hex")}@example.com`;
    const account = await api<{ account_id: string; invitation_url: string }>(server, "POST", "/v1/admin/accounts", { name: "Two-person rule", operator_email: ownerEmail }, admin);
    expect(account.status, account.text).toBe(201);
    const accountId = account.json.account_id;
    const invited = await api<{ invitation_url: string }>(server, "POST", `/v1/admin/accounts/${accountId}/operators`, { email: approverEmail }, admin);
    const agent = await api<{ api_key: string }>(server, "POST", `/v1/admin/accounts/${accountId}/agents`, { name: "deploy-bot" }, admin);
    const policy = await api(server, "PATCH", `/v1/admin/accounts/${accountId}`, { approval_policy: { approvals_required: 2, vault_keys: ["prod-*"] } }, admin);
    expect(policy.json.approval_policy).toEqual({ approvals_required: 2, vault_keys: ["prod-*"] });
    const owner = await operatorConsole(account.json.invitation_url);
    const approver = await operatorConsole(invited.json.invitation_url);
    const ferry = createClient({ baseUrl: server.publicUrl, apiKey: agent.json.api_key });
    return { admin, accountId, ownerEmail, approverEmail, owner, approver, ferry };
  }

  it("holds the credential until the second operator approves, then delivers it once; the audit names both", async () => {
    const { admin, accountId, ownerEmail, approverEmail, owner, approver, ferry } = await twoOperatorAccount();
    // The owner's settings show the policy (set by the admin API only).
    await eventually(() => owner.locator("#approval-policy").textContent()).toBe("2 different operators must approve requests for vault keys matching prod-*, each with their own passkey.");
    // Not DPoP-bound, so that a raw socket and a raw poll (below) may watch the same request.
    const requested = await ferry.credentials.request({ description: "Production <b>database</b> password", vaultKey: "prod-db", dpop: false });
    let settled = false;
    const received = ferry.credentials.waitForApproval(requested.deviceCode, { timeout: 90_000 }).finally(() => (settled = true));
    const socket = openWaitSocket(server, ["keyferry.v1", `keyferry.device-code.${requested.deviceCode}`]);
    const said: unknown[] = [];
    socket.ws.addEventListener("message", (event) => said.push(JSON.parse(String(event.data))));
    await socket.opened;

    // The first approval, with the credential, encrypted in the owner's browser to the agent's key.
    const ownerItem = requestItem(owner, "prod-db");
    await ownerItem.waitFor({ state: "visible", timeout: 15_000 });
    await eventually(() => ownerItem.textContent()).toContain("0 of 2 approvals");
    expect(await ownerItem.locator(".request-fingerprint").textContent()).toBe(requested.keyFingerprint);
    const secret = `pg_${randomBytes(12).toString("hex")}`;
    await ownerItem.getByLabel("Credential").fill(secret);
    await ownerItem.getByRole("button", { name: "Approve" }).click();
    await eventually(() => owner.getByRole("status").textContent()).toContain("Approved (1 of 2)");
    await eventually(() => ownerItem.textContent()).toContain("You approved this request");
    expect(await ownerItem.getByRole("button", { name: "Approve" }).isVisible()).toBe(false);

    // Held: the poll is pending, the sockets say nothing, the SDK keeps waiting.
    await sleep(3_000);
    const polled = await pollCredential(server, requested.deviceCode);
    // Pending; or early, since the SDK may have polled just before: either way nothing delivered.
    expect(polled.status).toBe(400);
    expect(["authorization_pending", "slow_down"]).toContain(polled.json.error);
    expect(said).toEqual([]);
    expect(settled).toBe(false);

    // The second operator sees who approved and approves with no credential field.
    const approverItem = requestItem(approver, "prod-db");
    await eventually(() => approverItem.textContent()).toContain("1 of 2 approvals");
    expect(await approverItem.locator(".request-approvers").textContent()).toContain(ownerEmail);
    expect(await approverItem.locator(".request-description").textContent()).toBe("Production <b>database</b> password");
    expect(await approverItem.locator("b").count()).toBe(0);
    expect(await approverItem.getByLabel("Credential").isVisible()).toBe(false);
    await approverItem.getByRole("button", { name: "Approve" }).click();
    await eventually(() => approver.getByRole("status").textContent()).toContain("Approved: the request of deploy-bot");

    expect(await received).toEqual({ vaultKey: "prod-db", description: "Production <b>database</b> password", credentialValue: secret });
    expect(await socket.message).toEqual({ type: "decided", status: "approved" });
    expect(said).toEqual([{ type: "decided", status: "approved" }]);
    await eventually(() => requestItem(owner, "prod-db").count()).toBe(0);

    const audit = await api<{ events: Array<{ type: string; actor?: { email?: string }; detail?: { approvers?: Array<{ email: string }> } }> }>(
      server,
      "GET",
      `/v1/admin/accounts/${accountId}/audit`,
      undefined,
      admin,
    );
    const approved = audit.json.events.find((event) => event.type === "approved")!;
    expect(approved.detail!.approvers!.map((a) => a.email)).toEqual([ownerEmail, approverEmail]);
    expect(approved.actor!.email).toBe(approverEmail);
    expect(audit.json.events.filter((event) => event.type === "partially_approved").map((event) => event.actor!.email)).toEqual([ownerEmail]);
  });

  it("lets a later approver approve on the approval page: 1 of 2, no credential field; the first approver is told they already approved", async () => {
    const { ownerEmail, owner, approver, ferry } = await twoOperatorAccount();
    const requested = await ferry.credentials.request({ description: "Payment key", vaultKey: "prod-stripe" });
    const received = ferry.credentials.waitForApproval(requested.deviceCode, { timeout: 90_000 });
    const ownerItem = requestItem(owner, "prod-stripe");
    await ownerItem.waitFor({ state: "visible", timeout: 15_000 });
    const secret = `sk_${randomBytes(12).toString("hex")}`;
    await ownerItem.getByLabel("Credential").fill(secret);
    await ownerItem.getByRole("button", { name: "Approve" }).click();
    await eventually(() => ownerItem.textContent()).toContain("You approved this request");

    /** The request's code on the approval page, in the operator's own tab (its virtual authenticator stays with the tab). */
    async function openOnPage(page: Page): Promise<void> {
      await page.goto(requested.verificationUriComplete!);
      await page.getByLabel("Email").fill(ownerEmail);
      await page.getByRole("button", { name: "Continue" }).click();
      await eventually(() => page.locator("#approvals-count").textContent()).toBe("1 of 2 approvals");
      expect(await page.locator("#approvers").textContent()).toBe(`Approved by ${ownerEmail}.`);
      expect(await page.getByLabel("Credential").isVisible()).toBe(false);
    }

    // The owner tries again from the page: the passkey signs, the server counts them once, the page says so.
    await openOnPage(owner);
    await owner.getByRole("button", { name: "Approve" }).click();
    await eventually(() => owner.getByRole("alert").textContent()).toBe("You have already approved this request. It now waits for another operator's approval; nothing more is needed from you.");

    // The second operator approves from the same code; the agent receives the owner's credential.
    await openOnPage(approver);
    await approver.getByRole("button", { name: "Approve" }).click();
    await eventually(() => approver.getByRole("heading", { name: "Approved" }).isVisible()).toBe(true);
    expect(await received).toEqual({ vaultKey: "prod-stripe", description: "Payment key", credentialValue: secret });
  });

  it("refuses the first approver's second approval (409), and ends as access_denied when the other operator denies", async () => {
    const { owner, approver, ferry } = await twoOperatorAccount();
    const requested = await ferry.credentials.request({ description: "Production token", vaultKey: "prod-token" });
    const outcome = ferry.credentials.waitForApproval(requested.deviceCode, { timeout: 90_000 }).catch((error: unknown) => error);
    const ownerItem = requestItem(owner, "prod-token");
    await ownerItem.waitFor({ state: "visible", timeout: 15_000 });
    await ownerItem.getByLabel("Credential").fill(`tok_${randomBytes(8).toString("hex")}`);
    await ownerItem.getByRole("button", { name: "Approve" }).click();
    await eventually(() => ownerItem.textContent()).toContain("You approved this request");

    // The page offers no second Approve; the API, signed by the same operator's passkey, refuses one.
    const requestId = (await ownerItem.getAttribute("data-request-id"))!;
    const again = await owner.evaluate(async (id) => {
      const post = (path: string, body: unknown) => fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const listed = (await (await fetch("/v1/console/requests")).json()) as { requests: Array<{ request_id: string; payload_sha256?: string }> };
      const digest = listed.requests.find((r) => r.request_id === id)!.payload_sha256;
      const challenge = (await (await post(`/v1/console/requests/${id}/challenge`, { decision: "approve", payload_sha256: digest })).json()) as { public_key: PublicKeyCredentialRequestOptionsJSON };
      const assertion = (await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(challenge.public_key) })) as PublicKeyCredential;
      const answer = await post(`/v1/console/requests/${id}/decide`, { decision: "approve", webauthn: assertion.toJSON() });
      return { status: answer.status, body: (await answer.json()) as { error?: string } };
    }, requestId);
    expect([again.status, again.body.error]).toEqual([409, "already_approved"]);

    const approverItem = requestItem(approver, "prod-token");
    await eventually(() => approverItem.textContent()).toContain("1 of 2 approvals");
    await approverItem.getByRole("button", { name: "Deny" }).click();
    expect(await outcome).toMatchObject({ code: "ACCESS_DENIED" });
  });
});
