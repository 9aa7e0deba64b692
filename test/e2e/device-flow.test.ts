// RFC 8628 end to end: an unmodified standard client (openid-client) against a real `wrangler dev`,
// the operator approving through the page's JSON calls.
import { randomBytes } from "node:crypto";
import * as client from "openid-client";
import { describe, expect, it } from "vitest";
import { api, createAccountAndAgent, type DevServer } from "./support/dev-server";
import { useDevServer } from "./support/use-dev-server";
import { lookup, operatorDecides, pollCredential, requestCredential } from "./support/approval";
import { sleep } from "../support/sleep";

const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
const USER_CODE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/;

interface Exchange {
  url: string;
  status: number;
  body: Record<string, unknown>;
  at: number;
}

/**
 * An openid-client configuration for a fresh agent, found through the metadata document. Every
 * exchange with the token endpoint is recorded, so tests can check the raw wire answers the library
 * normalised (e.g. `token_type`) and when it polled.
 */
async function agentClient(server: DevServer, auth: "post" | "basic" = "post") {
  const ids = await createAccountAndAgent(server, { agentName: "deploy-bot", agentEmail: "bot@example.com" });
  const clientAuth = auth === "post" ? client.ClientSecretPost(ids.apiKey) : client.ClientSecretBasic(ids.apiKey);
  const config = await client.discovery(new URL(server.url), ids.agentId, undefined, clientAuth, {
    algorithm: "oauth2",
    execute: [client.allowInsecureRequests],
  });
  const tokenExchanges: Exchange[] = [];
  config[client.customFetch] = async (url, options) => {
    const res = await send(url, options);
    if (new URL(url).pathname === new URL(config.serverMetadata().token_endpoint ?? "").pathname) {
      const body = (await res.clone().json().catch(() => ({}))) as Record<string, unknown>;
      tokenExchanges.push({ url, status: res.status, body, at: Date.now() });
    }
    return res;
  };
  return { ...ids, config, tokenExchanges };
}

/** Node's fetch for openid-client's custom fetch hook (its body type is wider than lib.dom's). */
const send = (url: string, options: client.CustomFetchOptions) => fetch(url, options as RequestInit);

/** Settles a promise into a value, so a rejection is never left unhandled while the test acts. */
function settle<T>(promise: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  return promise.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }));
}

describe("device authorization grant (RFC 8628) with openid-client", () => {
  const server = useDevServer({ vars: { POLL_INTERVAL_SECONDS: "1" } });

  it("publishes RFC 8414 metadata for the device code and CIBA grants", async () => {
    const res = await api(server, "GET", "/.well-known/oauth-authorization-server");
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      issuer: expect.stringMatching(new RegExp(`^${server.url}/?$`)),
      device_authorization_endpoint: `${server.url}/oauth/device_authorization`,
      token_endpoint: `${server.url}/oauth/token`,
      backchannel_authentication_endpoint: `${server.url}/oauth/bc-authorize`,
    });
    expect(res.json.grant_types_supported).toEqual(expect.arrayContaining([DEVICE_CODE_GRANT, "urn:openid:params:grant-type:ciba"]));
    expect(res.json.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(["client_secret_basic", "client_secret_post"]));
    expect(res.json.backchannel_token_delivery_modes_supported).toEqual(expect.arrayContaining(["poll", "ping"]));
  });

  it("delivers the approved credential as the access token (client_secret_post)", async () => {
    const agent = await agentClient(server, "post");
    const secret = `sk_live_${randomBytes(12).toString("hex")}`;

    const authorization = await client.initiateDeviceAuthorization(agent.config, { description: "Stripe secret key", vault_key: "stripe-sk" });
    expect(authorization.user_code).toMatch(USER_CODE);
    expect(authorization.verification_uri).toBe(`${server.url}/approve`);
    expect(authorization.verification_uri_complete).toBe(`${server.url}/approve?user_code=${authorization.user_code}`);
    expect(authorization.expires_in).toBe(600);
    expect(authorization.interval).toBe(1);

    const controller = new AbortController();
    const polling = settle(client.pollDeviceAuthorizationGrant(agent.config, authorization, undefined, { signal: controller.signal }));
    try {
      // The operator sees who asks and for what before approving.
      const found = await lookup(server, { user_code: authorization.user_code, email: agent.operatorEmail });
      expect(found.res.status).toBe(200);
      expect(found.cookie).toBeDefined();
      expect(found.res.json.request).toMatchObject({
        agent: { id: agent.agentId, name: "deploy-bot", email: "bot@example.com" },
        account_id: agent.accountId,
        description: "Stripe secret key",
        vault_key: "stripe-sk",
      });
      const decided = await api(server, "POST", "/v1/approvals/decide",
        { approval_token: found.res.json.approval_token, decision: "approve", credential_value: secret },
        { cookie: found.cookie ?? "" });
      expect(decided).toMatchObject({ status: 200, json: { status: "approved" } });

      const outcome = await Promise.race([polling, sleep(30_000).then(() => ({ ok: false as const, error: "timed out" }))]);
      if (!outcome.ok) throw outcome.error;
      expect(outcome.value).toMatchObject({
        access_token: secret,
        token_type: "bearer", // oauth4webapi lower-cases it; the wire value is checked below
        issued_token_type: "urn:keyferry:params:oauth:token-type:credential",
        vault_key: "stripe-sk",
      });
    } finally {
      controller.abort();
    }
    const delivered = agent.tokenExchanges.filter((exchange) => exchange.status === 200);
    expect(delivered).toHaveLength(1);
    expect(delivered[0]?.body.token_type).toBe("Bearer");

    // Delivered exactly once: the same grant again is invalid_grant.
    await sleep(1_200);
    await expect(client.pollDeviceAuthorizationGrant(agent.config, authorization)).rejects.toMatchObject({ error: "invalid_grant" });
  });

  it("reports a denial as access_denied (client_secret_basic, code typed loosely)", async () => {
    const agent = await agentClient(server, "basic");
    const authorization = await client.initiateDeviceAuthorization(agent.config, { description: "GitHub token", vault_key: "gh.token" });
    const controller = new AbortController();
    const polling = settle(client.pollDeviceAuthorizationGrant(agent.config, authorization, undefined, { signal: controller.signal }));
    try {
      // Input is case-insensitive and ignores dashes and spaces.
      const typed = ` ${authorization.user_code.replace("-", " ").toLowerCase()} `;
      await operatorDecides(server, typed, agent.operatorEmail, { decision: "deny" });
      const outcome = await Promise.race([polling, sleep(30_000).then(() => ({ ok: true as const, value: "timed out" }))]);
      expect(outcome.ok).toBe(false);
      expect(outcome.ok ? undefined : outcome.error).toMatchObject({ error: "access_denied" });
    } finally {
      controller.abort();
    }
  });

  it("answers exactly one 200 on the plain poll path, then invalid_grant", async () => {
    const agent = await createAccountAndAgent(server);
    const secret = `plain-${randomBytes(12).toString("hex")}`;
    const issued = await requestCredential(server, agent.apiKey, { description: "Database URL", vault_key: "db-url" });
    expect(issued.status).toBe(200);
    expect(issued.headers.get("cache-control")).toContain("no-store");
    const { device_code, user_code, interval } = issued.json;
    expect(interval).toBe(1);

    expect((await pollCredential(server, device_code)).json.error).toBe("authorization_pending");
    await operatorDecides(server, user_code, agent.operatorEmail, { decision: "approve", credential_value: secret });

    await sleep(1_200);
    const first = await pollCredential(server, device_code);
    expect(first.status).toBe(200);
    expect(first.json).toEqual({ vault_key: "db-url", description: "Database URL", credential_value: secret });
    expect(first.headers.get("cache-control")).toContain("no-store");

    await sleep(1_200);
    const second = await pollCredential(server, device_code);
    expect(second).toMatchObject({ status: 400, json: { error: "invalid_grant" } });
    expect(typeof second.json.error).toBe("string");

    const forged = await pollCredential(server, `${device_code.slice(0, -4)}AAAA`);
    expect(forged).toMatchObject({ status: 400, json: { error: "invalid_grant" } });
  });

  it("gives the 200 once when polls race for it", async () => {
    const agent = await createAccountAndAgent(server);
    const issued = await requestCredential(server, agent.apiKey, { description: "Race", vault_key: "race" });
    await operatorDecides(server, issued.json.user_code, agent.operatorEmail, { decision: "approve", credential_value: "raced" });
    const answers = await Promise.all(Array.from({ length: 6 }, () => pollCredential(server, issued.json.device_code)));
    expect(answers.filter((res) => res.status === 200)).toHaveLength(1);
    for (const res of answers.filter((answer) => answer.status !== 200)) {
      expect(res.status).toBe(400);
      expect(["slow_down", "invalid_grant"]).toContain(res.json.error);
    }
  });

  it("only the requesting agent, authenticated, may redeem the device code", async () => {
    const agent = await createAccountAndAgent(server);
    const other = await createAccountAndAgent(server);
    const issued = await requestCredential(server, agent.apiKey, { description: "Scoped", vault_key: "scoped" });
    const form = (clientId: string, clientSecret: string) =>
      new URLSearchParams({ grant_type: DEVICE_CODE_GRANT, device_code: issued.json.device_code, client_id: clientId, client_secret: clientSecret });

    const wrongSecret = await api(server, "POST", "/oauth/token", form(agent.agentId, "kf_wrong"));
    expect(wrongSecret).toMatchObject({ status: 401, json: { error: "invalid_client" } });
    await sleep(1_200); // so that no answer below can be slow_down
    const otherAgent = await api(server, "POST", "/oauth/token", form(other.agentId, other.apiKey));
    expect(otherAgent).toMatchObject({ status: 400, json: { error: "invalid_grant" } });
  });

  it("honours slow_down: the library's +5 s matches the server's new interval", async () => {
    const agent = await agentClient(server);
    // The first library poll is preceded by an extra poll of the same code, so the server sees it
    // early and answers slow_down; the library must then wait interval + 5 s and not be early again.
    let doubled = false;
    const recordingFetch = agent.config[client.customFetch];
    agent.config[client.customFetch] = async (url, options) => {
      if (!doubled && new URL(url).pathname === "/oauth/token") {
        doubled = true;
        await (await send(url, options)).arrayBuffer();
      }
      return recordingFetch ? recordingFetch(url, options) : send(url, options);
    };

    const authorization = await client.initiateDeviceAuthorization(agent.config, { description: "Slow", vault_key: "slow" });
    const controller = new AbortController();
    const polling = settle(client.pollDeviceAuthorizationGrant(agent.config, authorization, undefined, { signal: controller.signal }));
    try {
      const deadline = Date.now() + 15_000;
      while (!agent.tokenExchanges.some((exchange) => exchange.body.error === "slow_down") && Date.now() < deadline) await sleep(100);
      expect(agent.tokenExchanges[0]?.body.error).toBe("slow_down");

      await operatorDecides(server, authorization.user_code, agent.operatorEmail, { decision: "approve", credential_value: "after-slow-down" });
      const outcome = await Promise.race([polling, sleep(30_000).then(() => ({ ok: false as const, error: "timed out" }))]);
      if (!outcome.ok) throw outcome.error;
      expect(outcome.value.access_token).toBe("after-slow-down");
    } finally {
      controller.abort();
    }
    const [slowDown, next] = agent.tokenExchanges;
    expect(agent.tokenExchanges.map((exchange) => exchange.body.error ?? exchange.status)).toEqual(["slow_down", 200]);
    expect((next?.at ?? 0) - (slowDown?.at ?? 0)).toBeGreaterThanOrEqual(6_000);
  });

  it("keeps a slow_down increase for good on the plain poll path", async () => {
    const agent = await createAccountAndAgent(server);
    const issued = await requestCredential(server, agent.apiKey, { description: "Eager", vault_key: "eager" });
    const code = issued.json.device_code;
    expect((await pollCredential(server, code)).json.error).toBe("authorization_pending");
    expect(await pollCredential(server, code)).toMatchObject({ status: 400, json: { error: "slow_down" } });
    // The interval is now 6 s, so a poll 1.5 s later (enough before) is still early.
    await sleep(1_500);
    expect((await pollCredential(server, code)).json.error).toBe("slow_down");
  });
});

describe("device authorization grant expiry", () => {
  const server = useDevServer({ vars: { REQUEST_TTL_SECONDS: "5", POLL_INTERVAL_SECONDS: "1" } });

  it("answers expired_token once the request outlives REQUEST_TTL_SECONDS", async () => {
    const agent = await agentClient(server);
    const authorization = await client.initiateDeviceAuthorization(agent.config, { description: "Short-lived", vault_key: "short" });
    expect(authorization.expires_in).toBe(5);

    // The library's own deadline is expires_in; give it a longer one so the server's answer decides.
    const outcome = await settle(
      client.pollDeviceAuthorizationGrant(agent.config, authorization, undefined, { signal: AbortSignal.timeout(30_000) }),
    );
    expect(outcome.ok).toBe(false);
    expect(outcome.ok ? undefined : outcome.error).toMatchObject({ error: "expired_token" });

    expect(await pollCredential(server, authorization.device_code)).toMatchObject({ status: 400, json: { error: "expired_token" } });
    const found = await lookup(server, { user_code: authorization.user_code, email: agent.operatorEmail });
    expect(found.res).toMatchObject({ status: 404, json: { error: "not_found" } });
  });
});
