// Agent-provided strings are untrusted (DESIGN.md, anti-phishing): the approval page must show
// markup in names, descriptions and binding messages as literal text, run none of it, and not
// even need the CSP to stop it (a CSP violation would mean markup reached the DOM).
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { requestCredential } from "./support/approval";
import { watchedPage } from "./support/watched-page";
import { api, browserAvailable, createAccountAndAgent } from "./support/dev-server";
import { useBrowser } from "./support/use-browser";
import { useDevServer } from "./support/use-dev-server";

/** expect.poll with room for a loaded machine: vitest's default of 1 s is too tight for a real browser. */
const eventually = <T>(read: () => T | Promise<T>) => expect.poll(read, { timeout: 15_000, interval: 100 });

const HOSTILE_NAME = "<img src=x onerror=alert(1)>";
const HOSTILE_DESCRIPTION = `<script>window.__pwned=1</script>"'><svg onload=alert(1)>`;
/**
 * The server keeps binding messages to plain characters (CIBA Core §7.1), so no angle brackets;
 * entities and quotes are allowed, and must stay literal rather than be decoded into markup.
 */
const HOSTILE_BINDING = "&lt;b&gt;bold&lt;/b&gt; &#60;i&#62;x ');alert(1);//";
/** The vault key pattern (sdk/README.md, "credentials.request()") allows no markup characters; use its odd corners instead. */
const VAULT_KEY = "a.B_c-9";

/** Nothing ran, nothing was injected, nothing needed blocking. */
async function assertInert(page: Page, dialogs: string[], errors: string[]): Promise<void> {
  // Give any injected handler (onerror of a broken image, onload of an svg) time to fire.
  await page.waitForTimeout(500);
  expect(dialogs).toEqual([]);
  expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
  expect(await page.evaluate(() => window.__violations)).toEqual([]);
  expect(await page.evaluate(() => document.querySelectorAll("img, svg, iframe, b, i, script:not([src])").length)).toBe(0);
  expect(errors).toEqual([]);
}

async function textOf(page: Page, id: string): Promise<{ text: string | null; children: number }> {
  return page.locator(`#${id}`).evaluate((el) => ({ text: el.textContent, children: el.childElementCount }));
}

describe.skipIf(!browserAvailable())("hostile agent strings on the approval page", () => {
  const server = useDevServer({ vars: { POLL_INTERVAL_SECONDS: "1", ALLOW_HTTP_WEBHOOKS: "true" } });
  const browser = useBrowser();
  let hooks: Server;
  let hookUrl: string;
  const received: Array<{ approval_url?: string }> = [];

  beforeAll(async () => {
    // A local webhook receiver, so that push (CIBA) requests can be opened from their approval link.
    hooks = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        try {
          received.push(JSON.parse(body) as { approval_url?: string });
        } catch {
          // Not JSON: ignored, the test then finds no link.
        }
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((done) => hooks.listen(0, "127.0.0.1", done));
    hookUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/hook`;
  });

  afterAll(async () => {
    await new Promise((done) => hooks?.close(done));
  });

  test("device flow: a hostile agent name and description are shown as literal text and never run", async () => {
    const agent = await createAccountAndAgent(server, { agentName: HOSTILE_NAME });
    const asked = await requestCredential(server, agent.apiKey, { description: HOSTILE_DESCRIPTION, vault_key: VAULT_KEY });
    expect(asked.status, asked.text).toBe(200);

    const { context, page, dialogs, errors } = await watchedPage(browser);
    await page.goto(asked.json.verification_uri_complete);
    await page.getByLabel("Email").fill(agent.operatorEmail);
    await page.getByRole("button", { name: "Continue" }).click();
    await eventually(() => page.getByRole("heading", { name: "Review the request" }).isVisible()).toBe(true);

    expect(await textOf(page, "agent-name")).toEqual({ text: HOSTILE_NAME, children: 0 });
    expect(await textOf(page, "description")).toEqual({ text: HOSTILE_DESCRIPTION, children: 0 });
    expect(await textOf(page, "vault-key")).toEqual({ text: VAULT_KEY, children: 0 });
    expect(await page.getByText(HOSTILE_NAME, { exact: true }).isVisible()).toBe(true);
    expect(await page.getByText(HOSTILE_DESCRIPTION, { exact: true }).isVisible()).toBe(true);
    await assertInert(page, dialogs, errors);

    // Deciding does not bring anything back to life either.
    await page.getByRole("button", { name: "Deny" }).click();
    await eventually(() => page.getByRole("heading", { name: "Denied" }).isVisible()).toBe(true);
    await assertInert(page, dialogs, errors);
  });

  test("push (CIBA) link: a hostile binding message is literal text, and the link decides nothing until Continue", async () => {
    const agent = await createAccountAndAgent(server, { agentName: HOSTILE_NAME });
    const admin = { authorization: `Bearer ${server.adminToken}` };
    const patched = await api(server, "PATCH", `/v1/admin/accounts/${agent.accountId}`, { webhook_url: hookUrl }, admin);
    expect(patched.status, patched.text).toBe(200);

    const form = new URLSearchParams({
      login_hint: agent.operatorEmail,
      binding_message: HOSTILE_BINDING,
      description: HOSTILE_DESCRIPTION,
      vault_key: VAULT_KEY,
      scope: "openid",
    });
    const basic = Buffer.from(`${encodeURIComponent(agent.agentId)}:${encodeURIComponent(agent.apiKey)}`).toString("base64");
    const started = await api(server, "POST", "/oauth/bc-authorize", form, { authorization: `Basic ${basic}` });
    expect(started.status, started.text).toBe(200);

    await eventually(() => received.find((hook) => typeof hook.approval_url === "string")).toBeTruthy();
    const approvalUrl = received.find((hook) => typeof hook.approval_url === "string")!.approval_url!;
    expect(new URLSearchParams(new URL(approvalUrl).hash.slice(1)).get("link")).toBeTruthy();

    // A link-preview bot fetching the link first must not burn it.
    const preview = await api(server, "GET", new URL(approvalUrl).pathname);
    expect(preview.status).toBe(200);

    const { context, page, dialogs, errors } = await watchedPage(browser);
    await page.goto(approvalUrl);
    // Link mode: no code or email to type, and nothing happens before the operator presses Continue.
    await eventually(() => page.getByRole("button", { name: "Continue" }).isVisible()).toBe(true);
    expect(await page.getByLabel("Email").isVisible()).toBe(false);
    await page.getByRole("button", { name: "Continue" }).click();
    await eventually(() => page.getByRole("heading", { name: "Review the request" }).isVisible()).toBe(true);

    expect(await textOf(page, "binding-message")).toEqual({ text: HOSTILE_BINDING, children: 0 });
    expect(await textOf(page, "agent-name")).toEqual({ text: HOSTILE_NAME, children: 0 });
    expect(await textOf(page, "description")).toEqual({ text: HOSTILE_DESCRIPTION, children: 0 });
    expect(await page.getByText(HOSTILE_BINDING, { exact: true }).isVisible()).toBe(true);
    await assertInert(page, dialogs, errors);

    await page.getByRole("button", { name: "Deny" }).click();
    await eventually(() => page.getByRole("heading", { name: "Denied" }).isVisible()).toBe(true);
    await assertInert(page, dialogs, errors);
  });
});
