// OpenID CIBA end to end: an unmodified openid-client finds the backchannel endpoint in the metadata
// document and polls; the operator is reached through a signed webhook (a local HTTP receiver) and
// decides in a real Chromium from the webhook's approval_url; ping mode notifies the agent's own
// endpoint with its bearer token (CIBA Core 1.0 §7, §10.2; README, "Device flow or push").
import { randomBytes } from "node:crypto";
import * as client from "openid-client";
import type { Page } from "playwright-core";
import { beforeAll, describe, expect, it } from "vitest";
import { verifyWebhook } from "../../core/webhook-signature";
import type { AccountUpdatedBody, AgentCreatedBody } from "../../core/wire";
import { decide, lookup } from "./support/approval";
import { api, browserAvailable, createAccountAndAgent, type DevServer } from "./support/dev-server";
import { useBrowser } from "./support/use-browser";
import { useNotificationServer } from "./support/notification-server";
import { signatureIsValid, startReceiver, waitForEmail, type Receiver, type Received } from "./support/receiver";

/** expect.poll with room for a loaded machine: vitest's default of 1 s is too tight for a real browser. */
const eventually = <T>(read: () => T | Promise<T>) => expect.poll(read, { timeout: 15_000, interval: 100 });

interface Hook {
  type: string;
  request: { agent: { id: string; name: string; email: string | null }; account_id: string; description: string; vault_key: string; expires_at: string; binding_message?: string };
  approval_url: string;
}

/** Settles a promise into a value, so a rejection is never left unhandled while the test acts. */
function settle<T>(promise: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  return promise.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }));
}

/** Waits for a settled promise, at most `ms`. */
async function within<T>(settled: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`not settled within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([settled, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const uniqueVaultKey = (prefix: string) => `${prefix}-${randomBytes(4).toString("hex")}`;

describe("CIBA with openid-client against wrangler dev", () => {
  // One wrangler dev (polls every second, http webhooks allowed) and a loopback receiver.
  const notifications = useNotificationServer({ receiver: true });
  const { admin } = notifications;
  let server: DevServer;
  let hooks: Receiver;
  beforeAll(() => void ({ server, hooks } = notifications.started()));


  /** An openid-client configuration found through the RFC 8414 metadata document, nothing else. */
  async function configure(agentId: string, apiKey: string): Promise<client.Configuration> {
    return client.discovery(new URL(server.url), agentId, undefined, client.ClientSecretBasic(apiKey), {
      algorithm: "oauth2",
      execute: [client.allowInsecureRequests],
    });
  }

  /** CIBA Core §7.1 as an agent asks: `scope` is required by openid-client and ignored by the service. */
  type Ask = { login_hint: string; binding_message: string; description: string; vault_key: string; client_notification_token?: string };
  const initiate = (config: client.Configuration, ask: Ask) => client.initiateBackchannelAuthentication(config, { ...ask, scope: "openid" });

  /** A fresh account whose webhook points at the local receiver; returns the agent and the secret. */
  async function hookedAgent(name: string) {
    const agent = await createAccountAndAgent(server, { agentName: name, agentEmail: `${name}@example.com` });
    const patched = await api<AccountUpdatedBody>(
      server, "PATCH", `/v1/admin/accounts/${agent.accountId}`, { webhook_url: `${hooks.origin}/hooks/${agent.accountId}` }, admin(),
    );
    expect(patched.status, patched.text).toBe(200);
    return { ...agent, webhookSecret: patched.json.webhook_secret!, hookPath: `/hooks/${agent.accountId}` };
  }

  /** The webhook for this account's request with `vaultKey`, after checking its signature both ways. */
  async function webhookFor(agent: { webhookSecret: string; hookPath: string }, vaultKey: string): Promise<Hook> {
    const matches = (hit: Received) => hit.path === agent.hookPath && hit.body.includes(vaultKey);
    const [hit] = await hooks.waitFor(1, 15_000, matches);
    const signature = hit!.headers["keyferry-signature"];
    expect(signatureIsValid(agent.webhookSecret, hit!.body, signature)).toBe(true);
    expect(await verifyWebhook(agent.webhookSecret, hit!.body, String(signature))).toBe(true);
    return JSON.parse(hit!.body) as Hook;
  }

  it("the metadata document advertises CIBA to the library", async () => {
    const agent = await createAccountAndAgent(server);
    const metadata = (await configure(agent.agentId, agent.apiKey)).serverMetadata();
    expect(metadata.backchannel_authentication_endpoint).toBe(`${server.url}/oauth/bc-authorize`);
    expect(metadata.token_endpoint).toBe(`${server.url}/oauth/token`);
    expect(metadata.backchannel_token_delivery_modes_supported).toEqual(expect.arrayContaining(["poll", "ping"]));
  });

  it("ping mode: after approval the agent's endpoint gets {auth_req_id} with its bearer token, then the token request delivers", async () => {
    const pings = await startReceiver();
    try {
      const base = await createAccountAndAgent(server);
      const registered = await api<AgentCreatedBody>(
        server, "POST", `/v1/admin/accounts/${base.accountId}/agents`,
        { name: "pinged-bot", backchannel_client_notification_endpoint: `${pings.origin}/ciba` }, admin(),
      );
      expect(registered.status, registered.text).toBe(201);
      const config = await configure(registered.json.agent_id, registered.json.api_key);
      const notificationToken = randomBytes(24).toString("base64url");
      const vaultKey = uniqueVaultKey("aws");

      const started = await initiate(config, {
        login_hint: base.operatorEmail,
        binding_message: "Ping 7",
        description: "AWS deploy key",
        vault_key: vaultKey,
        client_notification_token: notificationToken,
      });
      expect(started.auth_req_id).toEqual(expect.any(String));
      expect(pings.received).toEqual([]);

      // The operator approves through the page's JSON calls, from the emailed one-click link.
      const email = await waitForEmail(server, (e) => e.text.includes(vaultKey), 15_000);
      expect(email.text).toContain("Ping 7");
      const token = /\/approve#link=([\w.-]+)/.exec(email.text)?.[1];
      expect(token, email.text).toBeDefined();
      const found = await lookup(server, { link_token: token! });
      expect(found.res.status, found.res.text).toBe(200);
      expect(found.res.json.request.binding_message).toBe("Ping 7");
      const decided = await decide(server, found.cookie, { approval_token: found.res.json.approval_token, decision: "approve", credential_value: "AKIA-pinged" });
      expect(decided.status, decided.text).toBe(200);

      const [ping] = await pings.waitFor(1, 15_000);
      expect(ping!.method).toBe("POST");
      expect(ping!.path).toBe("/ciba");
      expect(ping!.headers.authorization).toBe(`Bearer ${notificationToken}`);
      expect(ping!.headers["content-type"]).toMatch(/^application\/json/);
      expect(JSON.parse(ping!.body)).toEqual({ auth_req_id: started.auth_req_id });

      // Only now does the agent ask for the token.
      const tokens = await client.pollBackchannelAuthenticationGrant(config, started, undefined, { signal: AbortSignal.timeout(20_000) });
      expect(tokens).toMatchObject({ access_token: "AKIA-pinged", vault_key: vaultKey });
      expect(pings.received).toHaveLength(1);
    } finally {
      await pings.close();
    }
  });

  describe.skipIf(!browserAvailable())("operator in Chromium, from the webhook's approval_url", () => {
    const browser = useBrowser();

    async function openLink(url: string): Promise<Page> {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(url);
      // Link mode: nothing to type, and nothing happens before the operator presses Continue.
      await eventually(() => page.getByRole("button", { name: "Continue" }).isVisible()).toBe(true);
      expect(await page.getByLabel("Email").isVisible()).toBe(false);
      await page.getByRole("button", { name: "Continue" }).click();
      await eventually(() => page.getByRole("heading", { name: "Review the request" }).isVisible()).toBe(true);
      return page;
    }

    it("poll mode: the library's poll resolves with the credential the operator typed; a preview bot's GET burns nothing", async () => {
      const agent = await hookedAgent("deploy-bot");
      const config = await configure(agent.agentId, agent.apiKey);
      const vaultKey = uniqueVaultKey("stripe-sk");
      const secret = `sk_live_${randomBytes(12).toString("hex")}`;

      const started = await initiate(config, { login_hint: agent.operatorEmail, binding_message: "Deploy 42", description: "Stripe secret key", vault_key: vaultKey });
      expect(started.expires_in).toBeGreaterThan(590);
      expect(started.interval).toBe(1);
      const controller = new AbortController();
      const polling = settle(client.pollBackchannelAuthenticationGrant(config, started, undefined, { signal: controller.signal }));
      try {
        const hook = await webhookFor(agent, vaultKey);
        expect(hook).toMatchObject({
          type: "credential.requested",
          request: {
            agent: { id: agent.agentId, name: "deploy-bot", email: "deploy-bot@example.com" },
            account_id: agent.accountId,
            description: "Stripe secret key",
            vault_key: vaultKey,
            binding_message: "Deploy 42",
          },
        });
        expect(hook.approval_url.startsWith(`${server.url}/approve#link=`)).toBe(true);

        // A chat tool's link preview fetches the URL first: it gets the page, and decides nothing.
        const preview = await fetch(hook.approval_url, { headers: { "user-agent": "Slackbot-LinkExpanding 1.0" }, signal: AbortSignal.timeout(10_000) });
        expect(preview.status).toBe(200);
        expect(preview.headers.get("content-type")).toMatch(/^text\/html/);
        await preview.arrayBuffer();

        const page = await openLink(hook.approval_url);
        expect(await page.locator("#binding-message").textContent()).toBe("Deploy 42");
        expect(await page.locator("#agent-name").textContent()).toBe("deploy-bot");
        expect(await page.locator("#account-id").textContent()).toBe(agent.accountId);
        expect(await page.locator("#vault-key").textContent()).toBe(vaultKey);
        await page.getByLabel("Credential").fill(secret);
        await page.getByRole("button", { name: "Approve" }).click();
        await eventually(() => page.getByRole("heading", { name: "Approved" }).isVisible()).toBe(true);

        const outcome = await within(polling, 30_000);
        if (!outcome.ok) throw outcome.error;
        expect(outcome.value).toMatchObject({
          access_token: secret,
          token_type: "bearer", // oauth4webapi lower-cases the wire's "Bearer"
          issued_token_type: "urn:keyferry:params:oauth:token-type:credential",
          vault_key: vaultKey,
        });
      } finally {
        controller.abort();
      }

      // Delivered once: the same auth_req_id again is invalid_grant.
      const again = await settle(client.pollBackchannelAuthenticationGrant(config, started, undefined, { signal: AbortSignal.timeout(10_000) }));
      expect(again.ok).toBe(false);
      expect((again as { error: { error?: string } }).error.error).toBe("invalid_grant");
    });

    it("deny on the page: openid-client rejects with access_denied", async () => {
      const agent = await hookedAgent("denied-bot");
      const config = await configure(agent.agentId, agent.apiKey);
      const vaultKey = uniqueVaultKey("github-token");

      const started = await initiate(config, { login_hint: agent.operatorEmail, binding_message: "Deny me", description: "GitHub token", vault_key: vaultKey });
      const polling = settle(client.pollBackchannelAuthenticationGrant(config, started, undefined, { signal: AbortSignal.timeout(45_000) }));

      const hook = await webhookFor(agent, vaultKey);
      const page = await openLink(hook.approval_url);
      expect(await page.locator("#binding-message").textContent()).toBe("Deny me");
      await page.getByRole("button", { name: "Deny" }).click();
      await eventually(() => page.getByRole("heading", { name: "Denied" }).isVisible()).toBe(true);

      const outcome = await within(polling, 30_000);
      expect(outcome.ok).toBe(false);
      const error = (outcome as { error: unknown }).error;
      expect(error).toBeInstanceOf(client.ResponseBodyError);
      expect((error as client.ResponseBodyError).error).toBe("access_denied");
    });
  });
});
