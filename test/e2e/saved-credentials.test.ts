// One-touch approval with a saved credential (README, "Saved credentials") in real Chromium with a
// PRF-capable CDP virtual authenticator (`hasPrf: true`) against `wrangler dev` on http://localhost:
// the operator saves a credential sealed by their passkey's PRF; with the browser's site data and
// cookies wiped (nothing of the item kept in the browser) and a fresh sign-in, one passkey touch
// approves an agent's request with it and the SDK receives the value; no persisted file and no log
// line holds the value. A passkey without PRF keeps the typed path and the page says why; another
// operator's passkey (a different PRF) cannot open the item, and the console sends nothing.
import { decodeProtectedHeader } from "jose";
import type { BrowserContext, CDPSession, Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import type { SavedCredentialBody } from "../../core/wire";
import { createClient } from "../../sdk/src/index";
import { api, browserAvailable } from "./support/dev-server";
import { distinctiveSecret, filesRevealing } from "./support/plaintext";
import { waitForEmail } from "./support/receiver";
import { useBrowser } from "./support/use-browser";
import { useDevServer } from "./support/use-dev-server";

const eventually = <T>(read: () => T | Promise<T>) => expect.poll(read, { timeout: 15_000, interval: 100 });
const OWNER = `owner-${Date.now()}@example.com`;
const APPROVER = `approver-${Date.now()}@example.com`;

interface Operator {
  context: BrowserContext;
  page: Page;
  cdp: CDPSession;
  authenticatorId: string;
  /** Every path the page called, with its JSON body. */
  calls: Array<{ path: string; body: string | null }>;
}

describe.skipIf(!browserAvailable())("one-touch approval with a saved credential", { timeout: 120_000 }, () => {
  const server = useDevServer({ publicHost: "localhost", vars: { POLL_INTERVAL_SECONDS: "1" } });
  const browser = useBrowser();
  const secret = distinctiveSecret();
  let owner: Operator;
  let apiKey: string;
  let accountId: string;
  /** The owner's item as the server holds it. */
  let stored: SavedCredentialBody;

  /** A browser context with a CTAP2 platform authenticator that verifies its user and evaluates PRF. */
  async function operatorBrowser(): Promise<Operator> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const calls: Operator["calls"] = [];
    page.on("request", (request) => {
      const url = new URL(request.url());
      if (url.pathname.startsWith("/v1/console/")) calls.push({ path: `${request.method()} ${url.pathname}`, body: request.postData() });
    });
    const cdp = await context.newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true, hasPrf: true },
    });
    return { context, page, cdp, authenticatorId, calls };
  }

  async function enrolFromEmail(operator: Operator, email: string): Promise<void> {
    const mail = await waitForEmail(server, (sent) => (sent.headers.to ?? "").includes(email) && sent.text.includes("#invite="), 30_000);
    await operator.page.goto(mail.text.match(/https?:\/\/\S+#invite=\S+/)![0]);
    await operator.page.getByRole("button", { name: /passkey/i }).click();
    await eventually(() => operator.page.getByRole("heading", { name: "Saved credentials" }).isVisible()).toBe(true);
  }

  async function save(operator: Operator, name: string, value: string): Promise<void> {
    await operator.page.getByLabel("Name", { exact: true }).fill(name);
    await operator.page.locator("#saved-form").getByLabel("Credential").fill(value);
    await operator.page.getByRole("button", { name: "Save", exact: true }).click();
    await eventually(() => operator.page.locator("#saved-items").textContent()).toContain(name);
  }

  const signCount = async (operator: Operator) =>
    (await operator.cdp.send("WebAuthn.getCredentials", { authenticatorId: operator.authenticatorId })).credentials.reduce((sum, c) => sum + c.signCount, 0);

  const requestItem = (operator: Operator, description: string) => operator.page.locator("li.request", { hasText: description });

  /** Signs in on a fresh console page; the saved list arrives with it. */
  async function signIn(operator: Operator): Promise<void> {
    await operator.page.goto(`${server.publicUrl}/console`);
    await operator.page.getByRole("button", { name: /sign in with a passkey/i }).click();
    await eventually(() => operator.page.locator("#saved-items").textContent()).toContain("stripe-sk");
  }

  /** The agent (the SDK, end to end) asks for `stripe-sk`; its request as the operator's console shows it. */
  async function agentAsks(operator: Operator, description: string) {
    const ferry = createClient({ baseUrl: server.publicUrl, apiKey });
    const requested = await ferry.credentials.request({ description, vaultKey: "stripe-sk" });
    const waiting = ferry.credentials.waitForApproval(requested.deviceCode, { timeout: 60_000 });
    waiting.catch(() => {}); // awaited by the tests that expect an answer
    const item = requestItem(operator, description);
    await item.waitFor({ state: "visible", timeout: 15_000 });
    return { requested, waiting, item };
  }

  it("saves a credential sealed by the passkey's PRF: the server holds a dir/A256GCM JWE", async () => {
    const admin = { authorization: `Bearer ${server.adminToken}` };
    const account = await api<{ account_id: string }>(server, "POST", "/v1/admin/accounts", { name: "Saved E2E", operator_email: OWNER }, admin);
    accountId = account.json.account_id;
    apiKey = (await api<{ api_key: string }>(server, "POST", `/v1/admin/accounts/${accountId}/agents`, { name: "deploy-bot" }, admin)).json.api_key;
    owner = await operatorBrowser();
    await enrolFromEmail(owner, OWNER);

    await save(owner, "stripe-sk", secret);
    await eventually(() => owner.page.getByRole("status").textContent()).toContain("Saved stripe-sk");
    const put = owner.calls.find((c) => c.path === "PUT /v1/console/saved/stripe-sk")!;
    expect(put.body).not.toContain(secret);
    stored = await owner.page.evaluate(async () => (await fetch("/v1/console/saved/stripe-sk")).json());
    expect(decodeProtectedHeader(stored.jwe)).toEqual({ alg: "dir", enc: "A256GCM" });
    expect(Object.keys(JSON.parse(put.body!)).sort()).toEqual(["jwe", "passkey_id", "prf_salt"]);
  });

  it("with the browser's site data wiped and a fresh sign-in, one touch approves the agent's request with it", async () => {
    // Nothing of the item survives in this browser: cookies, storage, caches, all gone.
    await owner.cdp.send("Storage.clearDataForOrigin", { origin: server.publicUrl, storageTypes: "all" });
    await owner.context.clearCookies();
    await signIn(owner);
    const { requested, waiting, item } = await agentAsks(owner, "Stripe key <b>for</b> the deploy");
    expect(await item.locator(".request-fingerprint").textContent()).toBe(requested.keyFingerprint);

    const touchesBefore = await signCount(owner);
    owner.calls.length = 0;
    await item.getByRole("button", { name: "Approve with saved credential" }).click();
    await eventually(() => owner.page.getByRole("status").textContent()).toContain("Approved");
    expect(await waiting).toEqual({ vaultKey: "stripe-sk", description: "Stripe key <b>for</b> the deploy", credentialValue: secret });
    // One touch: a single assertion signed the decision and gave the PRF output.
    expect((await signCount(owner)) - touchesBefore).toBe(1);
    const challenge = owner.calls.find((c) => c.path.endsWith("/challenge"))!;
    expect(JSON.parse(challenge.body!)).toEqual({ decision: "approve", saved: "stripe-sk" });
    const decide = owner.calls.find((c) => c.path.endsWith("/decide"))!;
    const sent = JSON.parse(decide.body!) as { webauthn: { clientExtensionResults: unknown }; credential_jwe: string };
    // Neither the PRF output nor the value leaves the page: only a JWE to the agent's key.
    expect(sent.webauthn.clientExtensionResults).toEqual({});
    expect(decide.body).not.toContain(secret);
    expect(decodeProtectedHeader(sent.credential_jwe)).toMatchObject({ alg: "ECDH-ES+A256KW", enc: "A256GCM" });

    const { scanned, revealing } = await filesRevealing(server.persistDir, secret);
    expect(scanned).toBeGreaterThan(0);
    expect(revealing).toEqual([]);
    expect(server.logs()).not.toContain(secret);
    expect((await filesRevealing(server.persistDir, stored.jwe.split(".")[3]!)).revealing).not.toEqual([]);
  });

  it("a passkey without PRF keeps the typed path, and the page says why", async () => {
    // The same credential copied into a new context's authenticator: CDP copies its signing key,
    // not its PRF secret, so here it signs in and signs decisions but evaluates no PRF.
    const copy = await operatorBrowser();
    const { credentials } = await owner.cdp.send("WebAuthn.getCredentials", { authenticatorId: owner.authenticatorId });
    for (const credential of credentials) await copy.cdp.send("WebAuthn.addCredential", { authenticatorId: copy.authenticatorId, credential });
    await signIn(copy);
    const { waiting, item } = await agentAsks(copy, "Stripe key, no PRF");
    copy.calls.length = 0;
    await item.getByRole("button", { name: "Approve with saved credential" }).click();
    await eventually(() => item.locator(".request-saved-note").textContent()).toContain("PRF");
    expect(await item.getByRole("button", { name: "Approve with saved credential" }).count()).toBe(0);
    expect(copy.calls.filter((c) => c.path.endsWith("/decide"))).toEqual([]);

    await item.getByLabel("Credential").fill("typed-instead");
    await item.getByRole("button", { name: "Approve", exact: true }).click();
    expect((await waiting).credentialValue).toBe("typed-instead");
  });

  it("another operator's passkey cannot open the item: the console says so and sends nothing", async () => {
    const admin = { authorization: `Bearer ${server.adminToken}` };
    expect((await api(server, "POST", `/v1/admin/accounts/${accountId}/operators`, { email: APPROVER, role: "approver" }, admin)).status).toBe(201);
    const approver = await operatorBrowser();
    await enrolFromEmail(approver, APPROVER);
    await save(approver, "stripe-sk", "the approver's own value");
    // A server that hands the owner's item to the approver: their passkey's PRF gives another key.
    await approver.page.route("**/v1/console/saved/stripe-sk", (route) =>
      route.request().method() === "GET" ? route.fulfill({ json: stored }) : route.continue(),
    );

    const { item } = await agentAsks(approver, "Stripe key, wrong passkey");
    const touchesBefore = await signCount(approver);
    approver.calls.length = 0;
    await item.getByRole("button", { name: "Approve with saved credential" }).click();
    await eventually(() => approver.page.getByRole("alert").textContent()).toContain("cannot open the saved credential");
    expect((await signCount(approver)) - touchesBefore).toBe(1);
    expect(approver.calls.filter((c) => c.path.endsWith("/decide"))).toEqual([]);
    const pending = await approver.page.evaluate(async () => (await (await fetch("/v1/console/requests")).json()) as { requests: Array<{ description: string }> });
    expect(pending.requests.map((r) => r.description)).toContain("Stripe key, wrong passkey");
  });
});
