// The operator console in real Chromium (playwright-core) with a CDP virtual authenticator against a
// real `wrangler dev` on http://localhost (a WebAuthn RP ID must be a domain): enrol from the
// invitation in the real email, sign out and in with the passkey (no name typed), see an agent's
// request arrive without reload, approve it with the passkey, and the agent (the SDK over the return
// channel, with DPoP; and openid-client's device flow, unmodified) gets the credential. Also the
// 390 px layout and an approval made with the keyboard alone (README, "Console").
import { randomBytes } from "node:crypto";
import * as client from "openid-client";
import type { Browser, BrowserContext, Locator, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../sdk/src/index";
import { api, browserAvailable, launchBrowser, startDevServer, type DevServer } from "./support/dev-server";
import { waitForEmail } from "./support/receiver";
import { traceSdk } from "./support/sdk-trace";

const eventually = <T>(read: () => T | Promise<T>) => expect.poll(read, { timeout: 15_000, interval: 100 });
const OWNER = `owner-${randomBytes(4).toString("hex")}@example.com`;

/** The pending request whose vault key is `vaultKey`, as the console lists it. */
const requestItem = (page: Page, vaultKey: string): Locator => page.locator("li.request", { hasText: vaultKey });

describe.skipIf(!browserAvailable())("operator console", () => {
  let server: DevServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let apiKey: string;
  let agentId: string;
  const problems: string[] = [];
  let navigations = 0;
  /** How often the page has fetched the list: it must do so when told, not by polling or reconnecting. */
  let listFetches = 0;

  beforeAll(async () => {
    server = await startDevServer({ publicHost: "localhost", vars: { POLL_INTERVAL_SECONDS: "1" } });
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()}`);
    });
    page.on("request", (request) => {
      if (new URL(request.url()).pathname === "/v1/console/requests") listFetches++;
    });
    page.on("framenavigated", (frame) => {
      if (frame === page.mainFrame()) navigations++;
    });
    // A platform authenticator that keeps discoverable credentials and verifies its user (WebAuthn L3 §11.3).
    const cdp = await context.newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    const admin = { authorization: `Bearer ${server.adminToken}` };
    const account = await api<{ account_id: string }>(server, "POST", "/v1/admin/accounts", { name: "Console E2E", operator_email: OWNER }, admin);
    expect(account.status, account.text).toBe(201);
    const agent = await api<{ agent_id: string; api_key: string }>(server, "POST", `/v1/admin/accounts/${account.json.account_id}/agents`, { name: "deploy-bot", email: "bot@example.com" }, admin);
    apiKey = agent.json.api_key;
    agentId = agent.json.agent_id;
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it("enrols a passkey from the emailed invitation, then signs out and back in with it, no name typed", async () => {
    const email = await waitForEmail(server, (sent) => (sent.headers.to ?? "").includes(OWNER) && sent.text.includes("#invite="), 15_000);
    const invitation = email.text.match(/https?:\/\/\S+#invite=\S+/)![0];
    expect(invitation.startsWith(`${server.publicUrl}/console#invite=`)).toBe(true);
    await page.goto(invitation);
    await page.getByRole("button", { name: /passkey/i }).click();
    await expect.poll(() => page.getByRole("heading", { name: "Pending requests" }).isVisible(), { timeout: 15_000 }).toBe(true);
    expect(new URL(page.url()).hash).toBe("");

    await page.getByRole("button", { name: "Sign out" }).click();
    await eventually(() => page.getByRole("button", { name: /sign in with a passkey/i }).isVisible()).toBe(true);
    await page.getByRole("button", { name: /passkey/i }).click();
    await eventually(() => page.getByRole("heading", { name: "Pending requests" }).isVisible()).toBe(true);
    await eventually(() => page.locator("#who").textContent()).toContain(OWNER);
    await eventually(() => page.locator("#live-state").textContent()).toContain("Live");
    // Signed out, the page's session check answered 401 by design (Chromium logs each as an error);
    // from here on, signed in, the page must log no error at all.
    expect(problems.filter((p) => !p.includes("status of 401"))).toEqual([]);
    problems.length = 0;
  });

  it("shows an agent's request within 2 s without reload; the passkey approval reaches the SDK over the return channel with DPoP", async () => {
    const navigationsBefore = navigations;
    // Once the start-up fetches (page load, socket open) are done, an idle page fetches nothing: a
    // request shown below was announced on the socket, not polled.
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    for (let settled = -1; settled !== listFetches; await sleep(1_000)) settled = listFetches;
    const fetchesBefore = listFetches;
    await sleep(3_000);
    expect(listFetches).toBe(fetchesBefore);
    const trace = traceSdk();
    const ferry = createClient({ baseUrl: server.publicUrl, apiKey, fetch: trace.fetch, webSocket: trace.webSocket });
    const requested = await ferry.credentials.request({ description: "<b>Stripe</b> key for the deploy", vaultKey: "stripe-sk" });
    const issuedAt = Date.now();
    const waiting = ferry.credentials.waitForApproval(requested.deviceCode, { timeout: 60_000 });
    const item = requestItem(page, "stripe-sk");
    await item.waitFor({ state: "visible", timeout: 10_000 });
    const shownAfterMs = Date.now() - issuedAt;
    console.log(`console: a new request shown ${shownAfterMs} ms after the agent's request returned`);
    expect(shownAfterMs).toBeLessThan(2_000);
    expect(navigations).toBe(navigationsBefore);
    // The agent's text as text, and the fingerprint the SDK printed.
    await expect.poll(() => item.locator(".request-description").textContent()).toBe("<b>Stripe</b> key for the deploy");
    expect(await item.locator("b").count()).toBe(0);
    expect(await item.locator(".request-fingerprint").textContent()).toBe(requested.keyFingerprint);

    const secret = `sk_live_${randomBytes(12).toString("hex")}`;
    await item.getByLabel("Credential").fill(secret);
    await item.getByRole("button", { name: "Approve" }).click();
    await eventually(() => page.getByRole("status").textContent()).toContain("Approved");
    const received = await waiting;
    expect(received).toEqual({ vaultKey: "stripe-sk", description: "<b>Stripe</b> key for the deploy", credentialValue: secret });
    expect(trace.steps).toEqual(expect.arrayContaining([{ kind: "message", socket: 0, data: { type: "decided", status: "approved" } }, { kind: "poll", socketOpen: expect.any(Boolean), dpop: true }]));
    await eventually(() => requestItem(page, "stripe-sk").count()).toBe(0);
    // The audit names the decision.
    await page.getByRole("button", { name: "Refresh" }).click();
    await eventually(() => page.locator("#audit").textContent()).toContain("approved");
  });

  it("completes openid-client's device flow, unmodified, when the operator approves in the console", async () => {
    const config = await client.discovery(new URL(server.publicUrl), agentId, undefined, client.ClientSecretPost(apiKey), { algorithm: "oauth2", execute: [client.allowInsecureRequests] });
    const authorization = await client.initiateDeviceAuthorization(config, { description: "GitHub token", vault_key: "gh.token" });
    const controller = new AbortController();
    const polling = client.pollDeviceAuthorizationGrant(config, authorization, undefined, { signal: controller.signal });
    try {
      const item = requestItem(page, "gh.token");
      await item.waitFor({ state: "visible", timeout: 10_000 });
      const secret = `ghp_${randomBytes(12).toString("hex")}`;
      await item.getByLabel("Credential").fill(secret);
      await item.getByRole("button", { name: "Approve" }).click();
      const tokens = await polling;
      expect(tokens).toMatchObject({ access_token: secret, vault_key: "gh.token" });
    } finally {
      controller.abort();
    }
  });

  it("approves with the keyboard alone", async () => {
    const ferry = createClient({ baseUrl: server.publicUrl, apiKey });
    const requested = await ferry.credentials.request({ description: "Keyboard key", vaultKey: "keyboard-key" });
    const waiting = ferry.credentials.waitForApproval(requested.deviceCode, { timeout: 60_000 });
    const item = requestItem(page, "keyboard-key");
    await item.waitFor({ state: "visible", timeout: 10_000 });
    await page.locator("#requests-title").focus();
    const field = item.getByLabel("Credential");
    for (let presses = 0; presses < 40 && !(await field.evaluate((el) => el === document.activeElement)); presses++) await page.keyboard.press("Tab");
    expect(await field.evaluate((el) => el === document.activeElement)).toBe(true);
    const secret = `kb_${randomBytes(8).toString("hex")}`;
    await page.keyboard.type(secret);
    await page.keyboard.press("Tab");
    expect(await item.getByRole("button", { name: "Approve" }).evaluate((el) => el === document.activeElement)).toBe(true);
    await page.keyboard.press("Enter");
    expect((await waiting).credentialValue).toBe(secret);
  });

  it("lets the owner create an agent whose key is shown once and works at once", async () => {
    await page.getByLabel("New agent's name").fill("console-made-bot");
    await page.getByRole("button", { name: "Create agent" }).click();
    const key = page.locator("#agent-key-value");
    await eventually(() => key.textContent()).toMatch(/^kf1\./);
    const apiKeyShown = (await key.textContent())!;
    await eventually(() => page.locator("#agents").textContent()).toContain("console-made-bot");
    expect(await page.locator("#agents").textContent()).not.toContain(apiKeyShown);
    const ferry = createClient({ baseUrl: server.publicUrl, apiKey: apiKeyShown });
    await ferry.credentials.request({ description: "From the new agent", vaultKey: "new-agent-key" });
    await requestItem(page, "new-agent-key").waitFor({ state: "visible", timeout: 10_000 });
    await requestItem(page, "new-agent-key").getByRole("button", { name: "Deny" }).click();
    await eventually(() => requestItem(page, "new-agent-key").count()).toBe(0);
  });

  it("fits a 390 px wide screen: no sideways scrolling, Approve and Deny in view, Deny works", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const ferry = createClient({ baseUrl: server.publicUrl, apiKey });
    const requested = await ferry.credentials.request({ description: `A long description ${"without-breaks-".repeat(12)}`, vaultKey: `phone-${"x".repeat(60)}` });
    const waiting = ferry.credentials.waitForApproval(requested.deviceCode, { timeout: 60_000 }).catch((error: unknown) => error);
    const item = requestItem(page, "phone-");
    await item.waitFor({ state: "visible", timeout: 10_000 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    for (const name of ["Approve", "Deny"]) {
      const box = (await item.getByRole("button", { name }).boundingBox())!;
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(390);
      expect(box.height).toBeGreaterThanOrEqual(44);
    }
    await item.getByRole("button", { name: "Deny" }).click();
    expect(await waiting).toMatchObject({ code: "ACCESS_DENIED" });
    expect(problems).toEqual([]);
  });
});
