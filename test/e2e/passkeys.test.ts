// Passkeys in real Chromium (playwright-core) with WebAuthn's virtual authenticator over CDP, against
// a real `wrangler dev` whose PUBLIC_BASE_URL is http://localhost:<port> (the RP ID must be a domain):
// enrolment from the invitation in the real email, the __Host- console cookie on http://localhost,
// an approval signed on the approval page that the agent receives, and refusals that leave the
// request pending (README, "Operators and passkeys").
import type { Browser, BrowserContext, CDPSession, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { pollCredential, requestCredential } from "./support/approval";
import { api, browserAvailable, launchBrowser, startDevServer, type DevServer } from "./support/dev-server";
import { waitForEmail } from "./support/receiver";

const eventually = <T>(read: () => T | Promise<T>) => expect.poll(read, { timeout: 20_000, interval: 100 });

interface Operator {
  context: BrowserContext;
  page: Page;
  cdp: CDPSession;
  authenticatorId: string;
}

describe.skipIf(!browserAvailable())("passkeys in the browser", () => {
  let server: DevServer;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const admin = () => ({ authorization: `Bearer ${server.adminToken}` });

  beforeAll(async () => {
    server = await startDevServer({ publicHost: "localhost", vars: { POLL_INTERVAL_SECONDS: "1" } });
    browser = await launchBrowser();
  });

  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => {});
    await browser?.close();
    await server?.stop();
  });

  /** A browser with a CTAP2 platform authenticator that holds resident keys and verifies its user. */
  async function operatorBrowser(): Promise<Operator> {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
    });
    return { context, page, cdp, authenticatorId };
  }

  /** The invitation link from the email `wrangler dev` wrote for this address. */
  async function invitationFor(email: string): Promise<string> {
    const mail = await waitForEmail(server, (m) => (m.headers.to ?? "").includes(email) && m.text.includes("#invite="), 30_000);
    const link = /(http:\/\/localhost:\d+\/console#invite=[A-Za-z0-9._-]+)/.exec(mail.text)?.[1];
    expect(link, "the invitation email carries a localhost link").toBeTruthy();
    return link!;
  }

  /**
   * Enrols with the invitation, as the console's "Create passkey" button does: registration options,
   * navigator.credentials.create, the response's JSON to /v1/console/enrol.
   */
  async function enrol(operator: Operator, link: string) {
    await operator.page.goto(`${server.publicUrl}/approve`);
    const invitation = link.slice(link.indexOf("#invite=") + "#invite=".length);
    return operator.page.evaluate(async (token) => {
      const post = (path: string, body: unknown) => fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const options = (await (await post("/v1/console/enrol/options", { invitation: token })).json()) as { public_key: PublicKeyCredentialCreationOptionsJSON };
      const credential = (await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options.public_key) })) as PublicKeyCredential;
      const answer = await post("/v1/console/enrol", { invitation: token, webauthn: credential.toJSON() });
      return { status: answer.status, body: (await answer.json()) as Record<string, unknown> };
    }, invitation);
  }

  async function newAccount() {
    const email = `owner-${Date.now()}-${Math.random().toString(36).slice(2)}@example.com`;
    const account = await api(server, "POST", "/v1/admin/accounts", { name: "Passkey team", operator_email: email }, admin());
    const agent = await api(server, "POST", `/v1/admin/accounts/${account.json.account_id}/agents`, { name: "deploy-bot" }, admin());
    return { email, accountId: account.json.account_id as string, operatorId: account.json.operator_id as string, apiKey: agent.json.api_key as string };
  }

  async function newRequest(apiKey: string) {
    const issued = await requestCredential(server, apiKey, { description: "Deploy key", vault_key: "deploy-key" });
    expect(issued.status).toBe(200);
    return issued.json;
  }

  /** The approval page: look up by code and email, type the credential. */
  async function reviewOnPage(page: Page, verificationUri: string, email: string, value: string) {
    await page.goto(verificationUri);
    await page.getByLabel("Email").fill(email);
    await page.getByRole("button", { name: "Continue" }).click();
    await page.getByRole("heading", { name: "Review the request" }).waitFor();
    await page.getByLabel("Credential").fill(value);
  }

  /** …and press Approve. */
  async function approveOnPage(page: Page, verificationUri: string, email: string, value: string) {
    await reviewOnPage(page, verificationUri, email, value);
    await page.getByRole("button", { name: "Approve" }).click();
  }

  async function expectPending(deviceCode: string) {
    const poll = await pollCredential(server, deviceCode);
    expect(poll.status).toBe(400);
    expect(poll.json.error).toBe("authorization_pending");
  }

  test("enrol from the emailed invitation, sign in with no name typed, approve with the passkey on the approval page, the agent receives it", async () => {
    const account = await newAccount();
    const owner = await operatorBrowser();
    const enrolled = await enrol(owner, await invitationFor(account.email));
    expect(enrolled.status).toBe(201);
    // Chromium keeps a __Host-/Secure cookie from http://localhost (a secure context).
    const cookie = (await owner.context.cookies()).find((c) => c.name === "__Host-kf_console");
    expect(cookie).toMatchObject({ secure: true, httpOnly: true, sameSite: "Strict", path: "/" });

    // Signed out, back in with the discoverable credential: no name typed, the user handle finds the account.
    await owner.context.clearCookies();
    const signedIn = await owner.page.evaluate(async () => {
      const post = (path: string, body: unknown) => fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const options = (await (await post("/v1/console/sign-in/options", {})).json()) as { public_key: PublicKeyCredentialRequestOptionsJSON };
      const credential = (await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options.public_key) })) as PublicKeyCredential;
      const answer = await post("/v1/console/sign-in", { webauthn: credential.toJSON() });
      return { status: answer.status, body: (await answer.json()) as Record<string, unknown>, session: (await fetch("/v1/console/session")).status };
    });
    expect(signedIn).toMatchObject({ status: 200, body: { account_id: account.accountId, operator: { operator_id: account.operatorId } }, session: 200 });

    const issued = await newRequest(account.apiKey);
    await approveOnPage(owner.page, issued.verification_uri_complete, account.email, "ghp_signed_by_passkey");
    await owner.page.getByRole("heading", { name: "Approved" }).waitFor({ timeout: 30_000 });
    const delivered = await pollCredential(server, issued.device_code);
    expect(delivered.json.credential_value).toBe("ghp_signed_by_passkey");

    const audit = await api(server, "GET", `/v1/admin/accounts/${account.accountId}/audit`, undefined, admin());
    const approved = (audit.json.events as Array<Record<string, any>>).find((e) => e.type === "approved");
    expect(approved?.actor).toMatchObject({ operator_id: account.operatorId, email: account.email, passkey_id: enrolled.body.passkey_id, user_verified: true });
    expect(approved?.actor.user_agent).toContain("Chrome");
  });

  test("a request issued before the first enrolment: the page, told of no passkey, signs once the decision asks for one", async () => {
    const account = await newAccount();
    const issued = await newRequest(account.apiKey);
    const owner = await operatorBrowser();
    const enrolled = await enrol(owner, await invitationFor(account.email));
    expect(enrolled.status).toBe(201);
    // The look-up answers from the request's flag (no passkey at issuance); the decision asks the account (401), and the page signs.
    await approveOnPage(owner.page, issued.verification_uri_complete, account.email, "ghp_enrolled_after");
    await owner.page.getByRole("heading", { name: "Approved" }).waitFor({ timeout: 30_000 });
    expect((await pollCredential(server, issued.device_code)).json.credential_value).toBe("ghp_enrolled_after");
    const audit = await api(server, "GET", `/v1/admin/accounts/${account.accountId}/audit`, undefined, admin());
    const approved = (audit.json.events as Array<Record<string, any>>).find((e) => e.type === "approved");
    expect(approved?.actor).toMatchObject({ operator_id: account.operatorId, passkey_id: enrolled.body.passkey_id, user_verified: true });
  });

  test("an assertion made in the browser decides nothing else: no assertion, swapped payload, replay, as a denial, for another request", async () => {
    const account = await newAccount();
    const owner = await operatorBrowser();
    expect((await enrol(owner, await invitationFor(account.email))).status).toBe(201);
    const first = await newRequest(account.apiKey);
    const second = await newRequest(account.apiKey);
    const page = owner.page;
    const send = (body: Record<string, unknown>) =>
      page.evaluate(async (b) => {
        const answer = await fetch("/v1/approvals/decide", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(b) });
        return { status: answer.status, error: ((await answer.json()) as { error?: string }).error };
      }, body);
    /** What the page sends when Approve is pressed (a fresh challenge, signed by the authenticator), held back from the server. */
    const signedApproval = async (): Promise<Record<string, unknown>> => {
      let held: Record<string, unknown> | null = null;
      await page.route("**/v1/approvals/decide", async (route) => {
        held = JSON.parse(route.request().postData() ?? "{}") as Record<string, unknown>;
        await route.abort();
      });
      await page.getByRole("button", { name: "Approve" }).click();
      await eventually(() => held !== null).toBe(true);
      await page.unroute("**/v1/approvals/decide");
      await eventually(() => page.getByRole("button", { name: "Approve" }).isEnabled()).toBe(true);
      return held!;
    };

    await reviewOnPage(page, first.verification_uri_complete, account.email, "ghp_first");
    const signed = await signedApproval();
    expect(await send({ ...signed, webauthn: undefined })).toEqual({ status: 401, error: "passkey_required" });

    const swapped = await signedApproval();
    // Another (still well-formed) JWE than the one whose digest was signed.
    expect(await send({ ...swapped, credential_jwe: `${swapped.credential_jwe as string}x` })).toEqual({ status: 403, error: "access_denied" });
    // That swap consumed the challenge: the untouched original is now a replay.
    expect(await send(swapped)).toEqual({ status: 403, error: "access_denied" });

    const asDenial = await signedApproval();
    expect(await send({ approval_token: asDenial.approval_token, decision: "deny", webauthn: asDenial.webauthn })).toEqual({ status: 403, error: "access_denied" });

    const forFirst = await signedApproval();
    const secondLookup = await page.evaluate(async ({ code, email }) => {
      const answer = await fetch("/v1/approvals/lookup", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ user_code: code, email }) });
      return ((await answer.json()) as { approval_token: string }).approval_token;
    }, { code: second.user_code, email: account.email });
    expect(await send({ ...forFirst, approval_token: secondLookup })).toEqual({ status: 403, error: "access_denied" });

    await expectPending(first.device_code);
    await expectPending(second.device_code);
  });

  test("without user verification the decision is refused and the request stays pending", async () => {
    const account = await newAccount();
    const owner = await operatorBrowser();
    expect((await enrol(owner, await invitationFor(account.email))).status).toBe(201);
    await owner.cdp.send("WebAuthn.setUserVerified", { authenticatorId: owner.authenticatorId, isUserVerified: false });
    // Chromium itself refuses an unverified assertion while the options require UV; a tampered page
    // that downgrades the options gets one, and the server refuses it.
    await owner.page.route("**/v1/approvals/challenge", async (route) => {
      const original = await route.fetch();
      const body = (await original.json()) as { public_key: Record<string, unknown> };
      await route.fulfill({ response: original, json: { public_key: { ...body.public_key, userVerification: "discouraged" } } });
    });
    const issued = await newRequest(account.apiKey);
    const decided = owner.page.waitForResponse((r) => r.url().endsWith("/v1/approvals/decide"));
    await approveOnPage(owner.page, issued.verification_uri_complete, account.email, "ghp_unverified");
    const answer = await decided;
    expect(answer.status()).toBe(403);
    expect(JSON.parse(answer.request().postData() ?? "{}").webauthn).toBeTruthy();
    await eventually(() => owner.page.getByRole("alert").textContent()).toMatch(/passkey/i);
    await expectPending(issued.device_code);
  });

  test("a removed operator's passkey decides nothing, though the account keeps another operator's", async () => {
    const account = await newAccount();
    const owner = await operatorBrowser();
    expect((await enrol(owner, await invitationFor(account.email))).status).toBe(201);
    const secondEmail = `second-${Date.now()}@example.com`;
    expect((await api(server, "POST", `/v1/admin/accounts/${account.accountId}/operators`, { email: secondEmail }, admin())).status).toBe(201);
    const colleague = await operatorBrowser();
    expect((await enrol(colleague, await invitationFor(secondEmail))).status).toBe(201);
    const removed = await api(server, "DELETE", `/v1/admin/accounts/${account.accountId}/operators/${account.operatorId}`, undefined, admin());
    expect(removed.status).toBe(204);

    // The options list only the account's live passkeys, so the browser would not even offer the removed
    // one; options stripped of that list (a tampered page) let it sign, and the server refuses it.
    await owner.page.route("**/v1/approvals/challenge", async (route) => {
      const original = await route.fetch();
      const body = (await original.json()) as { public_key: Record<string, unknown> };
      await route.fulfill({ response: original, json: { public_key: { ...body.public_key, allowCredentials: [] } } });
    });
    const issued = await newRequest(account.apiKey);
    const decided = owner.page.waitForResponse((r) => r.url().endsWith("/v1/approvals/decide"));
    await approveOnPage(owner.page, issued.verification_uri_complete, account.email, "ghp_removed");
    expect((await decided).status()).toBe(403);
    await eventually(() => owner.page.getByRole("alert").textContent()).toMatch(/passkey/i);
    await expectPending(issued.device_code);
    // The console session of the removed operator ended too.
    const session = await owner.page.evaluate(async () => (await fetch("/v1/console/session")).status);
    expect(session).toBe(401);
  });

  test("an account without a passkey is decided by the email binding, with the page's warning", async () => {
    const account = await newAccount();
    const page = (await operatorBrowser()).page;
    const issued = await newRequest(account.apiKey);
    await page.goto(issued.verification_uri_complete);
    await page.getByLabel("Email").fill(account.email);
    await page.getByRole("button", { name: "Continue" }).click();
    await expect.poll(() => page.getByText("not passkey-protected").isVisible()).toBe(true);
    await page.getByLabel("Credential").fill("ghp_email_binding");
    await page.getByRole("button", { name: "Approve" }).click();
    await page.getByRole("heading", { name: "Approved" }).waitFor({ timeout: 30_000 });
    expect((await pollCredential(server, issued.device_code)).json.credential_value).toBe("ghp_email_binding");
  });
});
