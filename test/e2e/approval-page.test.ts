// The operator approval page in a real browser (Debian Chromium via playwright-core) against a
// real `wrangler dev`: plain and end-to-end approval, denial, session claiming, expiry, headers,
// approval links, and the phone and desktop layouts (README, "A handoff in five requests").
import { randomBytes } from "node:crypto";
import { compactDecrypt, exportJWK, generateKeyPair, type JWK } from "jose";
import type { Browser, BrowserContextOptions, Page } from "playwright-core";
import { describe, expect, test } from "vitest";
import { keyFingerprint } from "../../core/fingerprint";
import { pollCredential, pollUntilSettled, requestCredential, type DeviceAuthorization } from "./support/approval";
import { browserAvailable, createAccountAndAgent } from "./support/dev-server";
import { useDevServer } from "./support/use-dev-server";
import { useBrowser } from "./support/use-browser";
import { waitForEmail } from "./support/receiver";

/** expect.poll with room for a loaded machine: vitest's default of 1 s is too tight for a real browser. */
const eventually = <T>(read: () => T | Promise<T>) => expect.poll(read, { timeout: 15_000, interval: 100 });

const PHONE: BrowserContextOptions = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
const DESKTOP: BrowserContextOptions = { viewport: { width: 1280, height: 800 } };
const REVIEW_HEADING = { name: "Review the request" };

interface Sent {
  method: string;
  url: string;
  postData: string;
}

/** A browser context whose every outgoing request and every page error are recorded. */
async function openPage(browser: Browser, options: BrowserContextOptions = DESKTOP) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  const sent: Sent[] = [];
  const problems: string[] = [];
  page.on("request", (request) => sent.push({ method: request.method(), url: request.url(), postData: request.postData() ?? "" }));
  page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });
  page.on("dialog", (dialog) => {
    problems.push(`dialog: ${dialog.message()}`);
    void dialog.dismiss();
  });
  return { context, page, sent, problems };
}

/** Step 1 of the page: the code is prefilled from the link, the operator types the email. */
async function lookUp(page: Page, authorization: DeviceAuthorization, email: string): Promise<void> {
  await page.goto(authorization.verification_uri_complete);
  await eventually(() => page.getByLabel("Code").inputValue()).toBe(authorization.user_code);
  await page.getByLabel("Email").fill(email);
  await page.getByRole("button", { name: "Continue" }).click();
}

describe.skipIf(!browserAvailable())("approval page", () => {
  const server = useDevServer({ vars: { POLL_INTERVAL_SECONDS: "1" } });
  const browser = useBrowser();

  async function newAgent(name = "deploy-bot") {
    return createAccountAndAgent(server, { agentName: name, agentEmail: `${name}@example.com` });
  }

  async function newRequest(apiKey: string, body: Record<string, unknown>): Promise<DeviceAuthorization> {
    const res = await requestCredential(server, apiKey, body);
    expect(res.status, res.text).toBe(200);
    return res.json;
  }

  async function page(options?: BrowserContextOptions) {
    const opened = await openPage(browser, options);
    return opened;
  }

  test("GET /approve carries the security headers and loads without CSP errors", async () => {
    const { page: p, problems } = await page();
    const response = await p.goto(`${server.url}/approve`);
    expect(response?.status()).toBe(200);
    const headers = response!.headers();
    expect(headers["content-type"]).toMatch(/^text\/html/);
    const csp = headers["content-security-policy"] ?? "";
    expect(csp).toMatch(/frame-ancestors 'none'/);
    expect(csp).toMatch(/script-src 'self'/);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(headers["cache-control"]).toMatch(/no-store/);
    expect(headers["referrer-policy"]).toBe("no-referrer");
    expect(headers["x-content-type-options"]).toBe("nosniff");
    await eventually(() => p.getByRole("button", { name: "Continue" }).isVisible()).toBe(true);
    // The module ran (it focuses the first empty field) and nothing was blocked by the CSP.
    await eventually(() => p.evaluate(() => document.activeElement?.id)).toBe("user-code");
    expect(problems).toEqual([]);
  });

  test("plain mode: the operator approves, the agent receives the value, the plaintext never leaves the browser", async () => {
    const agent = await newAgent("deploy-bot");
    const authorization = await newRequest(agent.apiKey, { description: "Stripe secret key for nightly billing", vault_key: "stripe-sk" });
    expect(authorization.verification_uri_complete.startsWith(`${server.url}/approve?`)).toBe(true);
    const secret = `sk_live_${randomBytes(18).toString("hex")}`;
    const { page: p, sent, problems } = await page();

    await lookUp(p, authorization, agent.operatorEmail);
    await eventually(() => p.getByRole("heading", REVIEW_HEADING).isVisible()).toBe(true);
    expect(await p.locator("#agent-name").textContent()).toBe("deploy-bot");
    expect(await p.locator("#agent-email").textContent()).toBe("deploy-bot@example.com");
    expect(await p.locator("#account-id").textContent()).toBe(agent.accountId);
    expect(await p.locator("#description").textContent()).toBe("Stripe secret key for nightly billing");
    expect(await p.locator("#vault-key").textContent()).toBe("stripe-sk");
    expect(await p.locator("#e2e-box").isVisible()).toBe(false);

    // The countdown is live: it shows m:ss below the request lifetime and goes down.
    const first = toSeconds(await p.locator("#time-left").textContent());
    expect(first).toBeGreaterThan(authorization.expires_in - 30);
    expect(first).toBeLessThanOrEqual(authorization.expires_in);
    await eventually(async () => toSeconds(await p.locator("#time-left").textContent())).toBeLessThan(first);

    await p.getByLabel("Credential").fill(secret);
    await eventually(() => p.locator("#credential-count").textContent()).toBe(`${secret.length} / 16384 bytes`);
    // Masked by default; Show reveals it for checking.
    expect(await p.getByLabel("Credential").getAttribute("class")).toMatch(/\bmasked\b/);
    await p.getByRole("button", { name: "Show" }).click();
    expect(await p.getByRole("button", { name: "Hide" }).getAttribute("aria-pressed")).toBe("true");
    expect(await p.getByLabel("Credential").getAttribute("class")).not.toMatch(/\bmasked\b/);
    await p.getByRole("button", { name: "Approve" }).click();
    await eventually(() => p.getByRole("heading", { name: "Approved" }).isVisible()).toBe(true);

    const delivered = await pollUntilSettled(server, authorization.device_code, authorization.interval, 30_000);
    expect(delivered.status, delivered.text).toBe(200);
    expect(delivered.json.credential_value).toBe(secret);
    expect(delivered.json.vault_key).toBe("stripe-sk");

    const decide = sent.filter((r) => r.url.endsWith("/v1/approvals/decide"));
    expect(decide).toHaveLength(1);
    const body = JSON.parse(decide[0]!.postData) as Record<string, unknown>;
    expect(body.decision).toBe("approve");
    expect(typeof body.credential_jwe).toBe("string");
    expect(body).not.toHaveProperty("credential_value");
    for (const request of sent) {
      expect(request.postData).not.toContain(secret);
      expect(request.url).not.toContain(secret);
    }
    expect(problems).toEqual([]);
  });

  test("end-to-end mode: the page shows the agent's key fingerprint and encrypts to that key", async () => {
    const agent = await newAgent("e2e-bot");
    const { publicKey, privateKey } = await generateKeyPair("ECDH-ES", { crv: "P-256", extractable: true });
    const publicJwk: JWK = await exportJWK(publicKey);
    const fingerprint = await keyFingerprint(publicJwk);
    const authorization = await newRequest(agent.apiKey, { description: "GitHub deploy token", vault_key: "github.deploy_token", public_key: publicJwk });
    const secret = `ghp_${randomBytes(18).toString("hex")}`;
    const { page: p, sent, problems } = await page();

    await lookUp(p, authorization, agent.operatorEmail);
    await eventually(() => p.locator("#fingerprint").textContent()).toBe(fingerprint);
    expect(await p.locator("#e2e-box").isVisible()).toBe(true);
    expect(await p.locator("#e2e-box").textContent()).toMatch(/matches the one your agent printed/);

    await p.getByLabel("Credential").fill(secret);
    await p.getByRole("button", { name: "Approve" }).click();
    await eventually(() => p.getByRole("heading", { name: "Approved" }).isVisible()).toBe(true);

    const delivered = await pollUntilSettled(server, authorization.device_code, authorization.interval, 30_000);
    expect(delivered.status, delivered.text).toBe(200);
    expect(delivered.json).not.toHaveProperty("credential_value");
    const jwe = delivered.json.credential_jwe!;
    const { plaintext, protectedHeader } = await compactDecrypt(jwe, privateKey, { keyManagementAlgorithms: ["ECDH-ES+A256KW"], contentEncryptionAlgorithms: ["A256GCM"] });
    expect(protectedHeader).toMatchObject({ alg: "ECDH-ES+A256KW", enc: "A256GCM" });
    expect(new TextDecoder().decode(plaintext)).toBe(secret);
    for (const request of sent) expect(request.postData).not.toContain(secret);
    expect(problems).toEqual([]);
  });

  test("deny: the page says Denied and the agent's poll gets access_denied", async () => {
    const agent = await newAgent("deny-bot");
    const authorization = await newRequest(agent.apiKey, { description: "Database password", vault_key: "db-password" });
    const { page: p, sent, problems } = await page();

    await lookUp(p, authorization, agent.operatorEmail);
    await eventually(() => p.getByRole("heading", REVIEW_HEADING).isVisible()).toBe(true);

    // An empty or oversized credential is refused in the page, before anything is sent.
    await p.getByRole("button", { name: "Approve" }).click();
    await eventually(() => p.getByRole("alert").textContent()).toMatch(/Enter the credential/);
    await p.getByLabel("Credential").fill("a".repeat(16385));
    await p.getByRole("button", { name: "Approve" }).click();
    await eventually(() => p.getByRole("alert").textContent()).toMatch(/16385 bytes.*16384/);
    expect(sent.filter((r) => r.url.includes("/v1/approvals/decide"))).toEqual([]);

    await p.getByRole("button", { name: "Deny" }).click();
    await eventually(() => p.getByRole("heading", { name: "Denied" }).isVisible()).toBe(true);

    const answer = await pollCredential(server, authorization.device_code);
    expect(answer.status).toBe(400);
    expect(answer.json.error).toBe("access_denied");
    expect(problems).toEqual([]);
  });

  test("an approval link: the token is read from the URL fragment and dropped from the address bar; the account is shown as text", async () => {
    const agent = await newAgent("link-bot");
    const vaultKey = `link-key-${randomBytes(4).toString("hex")}`;
    await newRequest(agent.apiKey, { description: "Link look-up", vault_key: vaultKey });
    const email = await waitForEmail(server, (e) => e.text.includes(vaultKey), 15_000);
    // Whichever form the mail carries (the query string before links moved to the fragment), open the fragment form.
    const token = /\/approve#link=([\w.-]+)/.exec(email.text)?.[1];
    expect(token, email.text).toBeTruthy();
    const { page: p, sent, problems } = await page();

    // The account line as the look-up answers it (README: the name, and the operator email masked),
    // with markup in the name: it must show as text.
    const shownName = `<img src=x onerror="document.title='pwned'">Acme & Co`;
    const shownEmail = "o\u2022\u2022\u2022@example.com";
    let served: { account?: { id: string; name: string; operator_email: string } } = {};
    await p.route("**/v1/approvals/lookup", async (route) => {
      const response = await route.fetch();
      const json = (await response.json()) as { request: typeof served & Record<string, unknown> };
      served = { ...json.request };
      json.request.account = { id: agent.accountId, name: shownName, operator_email: shownEmail };
      await route.fulfill({ response, json });
    });

    await p.goto(`${server.url}/approve#link=${token}`);
    await eventually(() => p.locator("#link-intro").isVisible()).toBe(true);
    expect(await p.getByLabel("Code").isVisible()).toBe(false);
    expect(await p.evaluate(() => location.href)).toBe(`${server.url}/approve`);
    await p.getByRole("button", { name: "Continue" }).click();
    await eventually(() => p.getByRole("heading", REVIEW_HEADING).isVisible()).toBe(true);

    expect(await p.locator("#agent-name").textContent()).toBe("link-bot");
    expect(await p.locator("#account-row").isVisible()).toBe(true);
    expect(await p.locator("#account-name").textContent()).toBe(shownName);
    expect(await p.locator("#account-email").textContent()).toBe(shownEmail);
    expect(await p.locator("#account-row img").count()).toBe(0);
    expect(await p.title()).not.toBe("pwned");
    // Where the server already names the account, it is this one, with the email masked.
    if (served.account) {
      expect(served.account.id).toBe(agent.accountId);
      expect(served.account.operator_email).not.toContain(agent.operatorEmail.split("@")[0]);
    }

    const lookups = sent.filter((r) => r.url.endsWith("/v1/approvals/lookup"));
    expect(lookups.map((r) => JSON.parse(r.postData))).toEqual([{ link_token: token }]);
    for (const request of sent) expect(request.url).not.toContain(token);

    await p.getByRole("button", { name: "Deny" }).click();
    await eventually(() => p.getByRole("heading", { name: "Denied" }).isVisible()).toBe(true);
    expect(problems).toEqual([]);
  });

  test("a wrong email is refused with a warning that attempts are limited", async () => {
    const agent = await newAgent("typo-bot");
    const authorization = await newRequest(agent.apiKey, { description: "Sentry DSN", vault_key: "sentry-dsn" });
    const { page: p } = await page();

    await lookUp(p, authorization, `not-${agent.operatorEmail}`);
    await eventually(() => p.getByRole("alert").textContent()).toMatch(/Attempts are limited/);
    expect(await p.getByRole("heading", REVIEW_HEADING).isVisible()).toBe(false);
    // Focus goes back to the form: the server answers a wrong email as it answers an unknown code
    // (README, "Contract notes"), so the page starts at the code, the first of the two to check.
    expect(await p.evaluate(() => document.activeElement?.id)).toBe("user-code");

    // The right email still works afterwards.
    await p.getByLabel("Email").fill(agent.operatorEmail);
    await p.getByRole("button", { name: "Continue" }).click();
    await eventually(() => p.getByRole("heading", REVIEW_HEADING).isVisible()).toBe(true);
  });

  test("a second browser looking up the same code is told it was already claimed", async () => {
    const agent = await newAgent("claim-bot");
    const authorization = await newRequest(agent.apiKey, { description: "AWS access key", vault_key: "aws-key" });
    const first = await page();
    const second = await page();

    await lookUp(first.page, authorization, agent.operatorEmail);
    await eventually(() => first.page.getByRole("heading", REVIEW_HEADING).isVisible()).toBe(true);

    await lookUp(second.page, authorization, agent.operatorEmail);
    await eventually(() => second.page.getByRole("alert").textContent()).toMatch(/already opened in another browser/);
    expect(await second.page.getByRole("heading", REVIEW_HEADING).isVisible()).toBe(false);

    // The claiming browser can still decide.
    await first.page.getByRole("button", { name: "Deny" }).click();
    await eventually(() => first.page.getByRole("heading", { name: "Denied" }).isVisible()).toBe(true);
  });

  test("deciding again from a second tab of the same browser says it was already decided", async () => {
    const agent = await newAgent("twice-bot");
    const authorization = await newRequest(agent.apiKey, { description: "npm publish token", vault_key: "npm-token" });
    const { page: first, context } = await page();
    const second = await context.newPage();

    await lookUp(first, authorization, agent.operatorEmail);
    await eventually(() => first.getByRole("heading", REVIEW_HEADING).isVisible()).toBe(true);
    // Same browser, same claim cookie: the second tab may look the request up too.
    await lookUp(second, authorization, agent.operatorEmail);
    await eventually(() => second.getByRole("heading", REVIEW_HEADING).isVisible()).toBe(true);

    await first.getByRole("button", { name: "Deny" }).click();
    await eventually(() => first.getByRole("heading", { name: "Denied" }).isVisible()).toBe(true);

    await second.getByLabel("Credential").fill("too-late");
    await second.getByRole("button", { name: "Approve" }).click();
    await eventually(() => second.getByRole("alert").textContent()).toMatch(/already decided or has expired/);
    expect(await second.getByRole("button", { name: "Approve" }).isDisabled()).toBe(true);
    expect(await second.getByLabel("Credential").inputValue()).toBe("");
    expect((await pollCredential(server, authorization.device_code)).json.error).toBe("access_denied");
  });

  test("an unknown code is reported as unknown or expired", async () => {
    const { page: p } = await page();
    await p.goto(`${server.url}/approve?user_code=BBBB-BBBB`);
    await p.getByLabel("Email").fill("nobody@example.com");
    await p.getByRole("button", { name: "Continue" }).click();
    await eventually(() => p.getByRole("alert").textContent()).toMatch(/No open request has this code/);
  });

  test("when the countdown reaches zero, Approve is disabled and the page says the request expired", async () => {
    const agent = await newAgent("slow-bot");
    const authorization = await newRequest(agent.apiKey, { description: "Slack bot token", vault_key: "slack-bot" });
    const { page: p, context } = await page();
    await context.clock.install();

    await lookUp(p, authorization, agent.operatorEmail);
    await eventually(() => p.getByRole("heading", REVIEW_HEADING).isVisible()).toBe(true);
    await p.getByLabel("Credential").fill("xoxb-never-sent");
    expect(await p.getByRole("button", { name: "Approve" }).isDisabled()).toBe(false);

    await context.clock.fastForward((authorization.expires_in + 2) * 1000);
    await eventually(() => p.locator("#time-left").textContent()).toBe("Expired");
    expect(await p.getByRole("button", { name: "Approve" }).isDisabled()).toBe(true);
    expect(await p.getByRole("alert").textContent()).toMatch(/expired/);
    expect(await p.getByLabel("Credential").inputValue()).toBe("");
  });

  for (const [label, options] of [["phone", PHONE], ["desktop", DESKTOP]] as const) {
    test(`layout at ${label} size: no sideways scrolling, 44 px touch targets, screenshots`, async () => {
      const agent = await newAgent(`${label}-bot`);
      const authorization = await newRequest(agent.apiKey, { description: `Layout check on a ${label}: a fairly long description that has to wrap over several lines without breaking the layout`, vault_key: "layout.check-key_1" });
      const { page: p, problems } = await page(options);

      await p.goto(authorization.verification_uri_complete);
      await eventually(() => p.getByRole("button", { name: "Continue" }).isVisible()).toBe(true);
      await assertLayout(p);
      await p.screenshot({ path: `/tmp/keyferry-approval-${label}-lookup.png`, fullPage: true });

      await p.getByLabel("Email").fill(agent.operatorEmail);
      await p.getByRole("button", { name: "Continue" }).click();
      await eventually(() => p.getByRole("heading", REVIEW_HEADING).isVisible()).toBe(true);
      await p.getByLabel("Credential").fill("layout-secret");
      await assertLayout(p);
      await p.screenshot({ path: `/tmp/keyferry-approval-${label}-review.png`, fullPage: true });

      await p.getByRole("button", { name: "Approve" }).click();
      await eventually(() => p.getByRole("heading", { name: "Approved" }).isVisible()).toBe(true);
      await p.screenshot({ path: `/tmp/keyferry-approval-${label}-approved.png`, fullPage: true });
      expect(problems).toEqual([]);
    });
  }
});

function toSeconds(text: string | null): number {
  const match = /^(\d+):(\d\d)$/.exec(text ?? "");
  if (!match) throw new Error(`countdown shows ${JSON.stringify(text)}, expected m:ss`);
  return Number(match[1]) * 60 + Number(match[2]);
}

/** Nothing wider than the viewport, and every visible control at least 44 px high and wide. */
async function assertLayout(page: Page): Promise<void> {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  const small = await page.evaluate(() =>
    Array.from(document.querySelectorAll<HTMLElement>("button, input, textarea"))
      .filter((el) => el.offsetParent !== null)
      .map((el) => ({ id: el.id, box: el.getBoundingClientRect() }))
      .filter(({ box }) => box.height < 44 || box.width < 44)
      .map(({ id, box }) => `${id} ${box.width}x${box.height}`),
  );
  expect(small).toEqual([]);
}
