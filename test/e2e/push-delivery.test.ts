// Web Push end to end against `wrangler dev` (README, "Push to your phone"): an operator's browser
// subscribed through the console API; a new request is pushed through the durable outbox to a
// loopback push endpoint, whose body http_ece (the Node library behind web-push, test only)
// decrypts to the exact payload, with a VAPID JWT jose verifies. A 503 is retried (the same payload,
// encrypted afresh), also when the server restarts on the same storage in between; a 410 removes
// the subscription, so the next request pushes nothing.
import { createECDH, randomBytes, type ECDH } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import ece from "http_ece";
import { base64url, importJWK, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AccountBody, AgentCreatedBody, AuditLogBody, DeviceAuthorizationBody, EnrolOptionsBody, PushKeyBody, PushSubscriptionCreatedBody } from "../../core/wire.ts";
import { SoftAuthenticator } from "../integration/support/soft-authenticator.ts";
import { sleep } from "../support/sleep.ts";
import { api } from "./support/api.ts";
import { useDevServer } from "./support/use-dev-server.ts";

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  status: number;
  /** Date.now() when it arrived. */
  at: number;
}

/** What the push service answers: a status, or a status with headers (e.g. `Retry-After`). */
type Answer = number | { status: number; headers: Record<string, string> };

/** A push service on loopback: answers each POST with the next answer of `script` (then 201). */
function pushService() {
  const received: Received[] = [];
  const script: Answer[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const answer = script.shift() ?? 201;
      const { status, headers } = typeof answer === "number" ? { status: answer, headers: {} } : answer;
      received.push({ path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks), status, at: Date.now() });
      res.writeHead(status, headers).end();
    });
  });
  return {
    received,
    script,
    start: () => new Promise<string>((done) => server.listen(0, "127.0.0.1", () => done(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))),
    stop: () => new Promise<void>((done) => server.close(() => done())),
  };
}

async function until<T>(what: string, read: () => T | undefined, ms = 30_000): Promise<T> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await sleep(100)) {
    const value = read();
    if (value !== undefined) return value;
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("Web Push to an operator's browser", () => {
  const server = useDevServer({ publicHost: "localhost", vars: { ALLOW_HTTP_WEBHOOKS: "true", NOTIFY_MAX_RETRY_DELAY_SECONDS: "1" } });
  const push = pushService();
  let pushBase = "";
  beforeAll(async () => {
    pushBase = await push.start();
  });
  afterAll(() => push.stop());

  /** An account whose owner enrolled a passkey and subscribed one browser; its agent's key. */
  async function subscribedAccount(endpoint: string) {
    const admin = { Authorization: `Bearer ${server.adminToken}` };
    const email = `owner-${crypto.randomUUID()}@example.com`;
    const account = await api<AccountBody>(server, "POST", "/v1/admin/accounts", { name: "Acme", operator_email: email }, admin);
    const agent = await api<AgentCreatedBody>(server, "POST", `/v1/admin/accounts/${account.json.account_id}/agents`, { name: "deploy-bot" }, admin);
    const invitation = account.json.invitation_url!.split("#invite=")[1]!;
    const origin = { Origin: new URL(server.publicUrl).origin };
    const authenticator = new SoftAuthenticator(new URL(server.publicUrl).origin);
    const options = await api<EnrolOptionsBody>(server, "POST", "/v1/console/enrol/options", { invitation }, origin);
    const webauthn = await authenticator.register(options.json.public_key as unknown as Record<string, unknown>);
    const enrolled = await api(server, "POST", "/v1/console/enrol", { invitation, webauthn }, origin);
    expect(enrolled.status).toBe(201);
    const cookie = enrolled.headers.get("set-cookie")!.split(";")[0]!;
    const key = await api<PushKeyBody>(server, "GET", "/v1/console/push", undefined, { Cookie: cookie });
    const browser: ECDH = createECDH("prime256v1");
    browser.generateKeys();
    const auth = randomBytes(16);
    const subscribed = await api<PushSubscriptionCreatedBody>(
      server,
      "POST",
      "/v1/console/push-subscriptions",
      { endpoint, expirationTime: null, keys: { p256dh: browser.getPublicKey().toString("base64url"), auth: auth.toString("base64url") } },
      { ...origin, Cookie: cookie },
    );
    expect(subscribed.status).toBe(201);
    return { accountId: account.json.account_id, apiKey: agent.json.api_key, browser, auth, applicationServerKey: key.json.application_server_key };
  }

  const ask = (apiKey: string, description: string) =>
    api<DeviceAuthorizationBody>(server, "POST", "/v1/credentials/request", { description, vault_key: "stripe-sk" }, { Authorization: `Bearer ${apiKey}` });

  it("pushes a new request, encrypted to the browser and VAPID-signed, retrying a 503 with the same payload", async () => {
    const path = `/push/${crypto.randomUUID()}`;
    const { apiKey, browser, auth, applicationServerKey } = await subscribedAccount(pushBase + path);
    push.script.push(503);
    const asked = await ask(apiKey, "Stripe <b>live</b> key");
    expect(asked.status).toBe(200);
    const attempts = await until("a retried push", () => {
      const mine = push.received.filter((r) => r.path === path);
      return mine.length >= 2 ? mine : undefined;
    });
    expect(attempts.map((a) => a.status)).toEqual([503, 201]);
    await sleep(1_500);
    expect(push.received.filter((r) => r.path === path)).toHaveLength(2);

    for (const attempt of attempts) {
      expect(attempt.headers["content-encoding"]).toBe("aes128gcm");
      expect(attempt.headers.urgency).toBe("high");
      expect(Number(attempt.headers.ttl)).toBeGreaterThan(0);
      expect(Number(attempt.headers.ttl)).toBeLessThanOrEqual(600);
      const payload = JSON.parse(ece.decrypt(attempt.body, { version: "aes128gcm", privateKey: browser, authSecret: auth.toString("base64url") }).toString("utf8"));
      expect(payload).toEqual({
        type: "credential.requested",
        request_id: expect.stringMatching(/^req_/),
        agent: { name: "deploy-bot" },
        description: "Stripe <b>live</b> key",
        vault_key: "stripe-sk",
        expires_at: expect.any(String),
        url: `${server.publicUrl}/console#request=${payload.request_id}`,
      });
      // Nothing an attacker could use: no code, token or device code anywhere in the message.
      expect(JSON.stringify(payload)).not.toContain(asked.json.user_code!.replace("-", ""));
      expect(JSON.stringify(payload)).not.toContain(asked.json.device_code!);
      const [, jwt, k] = /^vapid t=([^,]+), k=([A-Za-z0-9_-]+)$/.exec(String(attempt.headers.authorization)) ?? [];
      expect(k).toBe(applicationServerKey);
      const point = base64url.decode(k!);
      const publicKey = await importJWK({ kty: "EC", crv: "P-256", x: base64url.encode(point.slice(1, 33)), y: base64url.encode(point.slice(33)) }, "ES256");
      const { payload: claims } = await jwtVerify(jwt!, publicKey, { algorithms: ["ES256"], audience: pushBase, subject: "mailto:ops@keyferry.test" });
      expect(claims.exp! - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(24 * 60 * 60);
    }
  });

  it("a push answered 503, then the server restarted on the same storage, reaches the browser once: one request, the same payload", { timeout: 180_000 }, async () => {
    const path = `/push/${crypto.randomUUID()}`;
    const { accountId, apiKey, browser, auth } = await subscribedAccount(pushBase + path);
    // The retry is held 10 s (RFC 9110 §10.2.3, honoured by the outbox), so it falls after the restart.
    push.script.push({ status: 503, headers: { "Retry-After": "10" } });
    const asked = await ask(apiKey, "Survives a restart");
    expect(asked.status).toBe(200);
    const mine = () => push.received.filter((r) => r.path === path);
    await until("the first attempt", () => (mine().length >= 1 ? true : undefined));
    // A moment for the outbox to store the 503's outcome (the row and its retry time), then the stop.
    await sleep(1_000);
    const restartBegan = Date.now();
    await server.restart();

    const attempts = await until("the push after the restart", () => (mine().length >= 2 ? mine() : undefined), 120_000);
    expect(attempts.map((a) => a.status)).toEqual([503, 201]);
    expect(attempts[0]!.at).toBeLessThan(restartBegan);
    expect(attempts[1]!.at).toBeGreaterThan(restartBegan);
    // Accepted once: nothing more, though a row still stored would come again within the 1 s backoff cap.
    await sleep(5_000);
    expect(mine()).toHaveLength(2);

    // One event: both tries carry the outbox event's id as their RFC 8030 §5.4 `Topic` (so a push
    // service replaces rather than adds), name the same request, and decrypt (each encrypted afresh)
    // to the same bytes.
    expect(attempts[0]!.headers.topic).toMatch(/^[0-9a-f]{32}$/);
    expect(attempts[1]!.headers.topic).toBe(attempts[0]!.headers.topic);
    const [first, second] = attempts.map((a) => ece.decrypt(a.body, { version: "aes128gcm", privateKey: browser, authSecret: auth.toString("base64url") }).toString("utf8"));
    expect(second).toBe(first);
    const audit = await api<AuditLogBody>(server, "GET", `/v1/admin/accounts/${accountId}/audit`, undefined, { Authorization: `Bearer ${server.adminToken}` });
    const requested = audit.json.events.filter((e) => e.type === "requested");
    expect(requested).toHaveLength(1);
    expect(JSON.parse(second!)).toEqual({
      type: "credential.requested",
      request_id: requested[0]!.request_id,
      agent: { name: "deploy-bot" },
      description: "Survives a restart",
      vault_key: "stripe-sk",
      expires_at: expect.any(String),
      url: `${server.publicUrl}/console#request=${requested[0]!.request_id}`,
    });
    expect(audit.json.events.filter((e) => e.type === "notification_failed")).toEqual([]);
  });

  it("forgets a subscription its push service answers 410 for", async () => {
    const path = `/push/${crypto.randomUUID()}`;
    const { apiKey } = await subscribedAccount(pushBase + path);
    push.script.push(410);
    expect((await ask(apiKey, "first")).status).toBe(200);
    await until("the 410", () => push.received.find((r) => r.path === path));
    expect((await ask(apiKey, "second")).status).toBe(200);
    await sleep(2_000);
    expect(push.received.filter((r) => r.path === path).map((r) => r.status)).toEqual([410]);
  });
});
