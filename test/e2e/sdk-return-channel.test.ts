// The return channel end to end (README, "Contract notes": return channel; sdk/README.md, "credentials.waitForApproval()"): the SDK, the CLI and a CIBA
// waiter receive the credential against a real `wrangler dev`. The poll interval is 60 s and every wait
// gives up after 45 s, so polling alone could never deliver in time: a credential that arrives came
// because the socket said `decided`. The instrumented tests (support/sdk-trace.ts) also record the
// socket and every poll: approval, denial and expiry each arrive on the socket first.
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CompactEncrypt, importJWK } from "jose";
import { describe, expect, it } from "vitest";
import { createClient, type KeyferryError } from "../../sdk/src/index";
import { decide, lookup, operatorDecides } from "./support/approval";
import { api, createAccountAndAgent, type AccountAndAgent, type DevServer } from "./support/dev-server";
import { useDevServer } from "./support/use-dev-server";
import { waitForEmail } from "./support/receiver";
import { traceSdk } from "./support/sdk-trace";
import { openWaitSocket, tryUpgrade, waitUrl } from "./support/wait-socket";
import { sleep } from "../support/sleep";

const INTERVAL_SECONDS = 60;
/** Shorter than one interval: a wait that had to poll its way to the credential would time out. */
const WAIT_TIMEOUT_MS = 45_000;
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CLI = join(ROOT, "sdk/dist/cli.js");

/** The operator approves with the page's JSON calls; an end-to-end request gets a JWE to the agent's key, as the page makes it. */
async function approve(server: DevServer, agent: AccountAndAgent, userCode: string, value: string): Promise<void> {
  const found = await lookup(server, { user_code: userCode, email: agent.operatorEmail });
  expect(found.res.status, found.res.text).toBe(200);
  const { request } = found.res.json;
  const body: Record<string, unknown> = { approval_token: found.res.json.approval_token, decision: "approve" };
  if (request.public_key) {
    body.credential_jwe = await new CompactEncrypt(new TextEncoder().encode(value))
      .setProtectedHeader({ alg: "ECDH-ES+A256KW", enc: "A256GCM" })
      .encrypt(await importJWK(request.encryption_key, "ECDH-ES+A256KW"));
  } else {
    body.credential_value = value;
  }
  const decided = await decide(server, found.cookie, body);
  expect(decided.status, decided.text).toBe(200);
}

function settle<T>(promise: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  return promise.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }));
}

/** `promise`, or a clear failure after `ms` (rather than the test's own timeout). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, fail) => (timer = setTimeout(() => fail(new Error(`${what} within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe("credentials over the return channel against wrangler dev", () => {
  const server = useDevServer({ vars: { POLL_INTERVAL_SECONDS: String(INTERVAL_SECONDS) } });

  it("the SDK learns of the approval on the socket and collects the credential with exactly one poll", async () => {
    const agent = await createAccountAndAgent(server, { agentName: "channel-sdk" });
    const trace = traceSdk();
    const ferry = createClient({ baseUrl: server.url, apiKey: agent.apiKey, fetch: trace.fetch, webSocket: trace.webSocket });
    const secret = `sk-channel-${randomBytes(12).toString("hex")}`;
    const req = await ferry.credentials.request({ description: "Channel key", vaultKey: "channel-key" });
    expect(req.interval).toBe(INTERVAL_SECONDS);

    const waiting = settle(ferry.credentials.waitForApproval(req.deviceCode, { timeout: WAIT_TIMEOUT_MS }));
    await trace.opened(0);
    // The socket is open and nothing has been polled: the operator decides only now.
    expect(trace.steps).toEqual([{ kind: "open", socket: 0, protocol: "keyferry.v1" }]);
    const approvedAt = Date.now();
    await approve(server, agent, req.userCode!, secret);

    const result = await waiting;
    if (!result.ok) throw result.error;
    console.log(`approval → credential in the SDK over the return channel: ${Date.now() - approvedAt} ms (poll interval ${INTERVAL_SECONDS} s)`);
    expect(result.value).toEqual({ vaultKey: "channel-key", description: "Channel key", credentialValue: secret });

    // One socket, the device code and the request's DPoP proof only in subprotocols, never in the URL.
    expect(trace.sockets).toEqual([{ url: waitUrl(server), protocols: ["keyferry.v1", `keyferry.device-code.${req.deviceCode}`, expect.stringMatching(/^keyferry\.dpop\./)] }]);
    // In order: the socket opened, said `decided`, and then exactly one poll (key-bound) delivered.
    const beforeClose = trace.steps.filter((step) => step.kind !== "close");
    expect(beforeClose).toEqual([
      { kind: "open", socket: 0, protocol: "keyferry.v1" },
      { kind: "message", socket: 0, data: { type: "decided", status: "approved" } },
      { kind: "poll", socketOpen: expect.any(Boolean), dpop: true },
      { kind: "answer", status: 200 },
    ]);
    // The close frame may or may not have arrived before that poll (wrangler dev delays it); never a second socket.
    expect(trace.steps.filter((step) => step.kind === "close").length).toBeLessThanOrEqual(1);

    // Exactly once: the code is finished, and a socket for it is refused before the upgrade.
    const again = await settle(ferry.credentials.waitForApproval(req.deviceCode, { timeout: WAIT_TIMEOUT_MS }));
    expect(again.ok ? undefined : (again.error as KeyferryError).code).toBe("INVALID_GRANT");
    const refused = await tryUpgrade(server, ["keyferry.v1", `keyferry.device-code.${req.deviceCode}`]);
    expect(refused).toEqual({ status: 400, json: { error: "invalid_grant", error_description: expect.any(String) }, protocol: undefined });
  });

  it("a denial arrives on the socket, and the one poll that follows reports ACCESS_DENIED", async () => {
    const agent = await createAccountAndAgent(server, { agentName: "channel-denied" });
    const trace = traceSdk();
    const ferry = createClient({ baseUrl: server.url, apiKey: agent.apiKey, fetch: trace.fetch, webSocket: trace.webSocket });
    const req = await ferry.credentials.request({ description: "Denied on the channel", vaultKey: "denied-key" });
    const waiting = settle(ferry.credentials.waitForApproval(req.deviceCode, { timeout: WAIT_TIMEOUT_MS }));
    await trace.opened(0);
    await operatorDecides(server, req.userCode!, agent.operatorEmail, { decision: "deny" });
    const result = await waiting;
    expect(result.ok ? undefined : (result.error as KeyferryError).code).toBe("ACCESS_DENIED");
    expect(trace.steps.filter((step) => step.kind !== "close")).toEqual([
      { kind: "open", socket: 0, protocol: "keyferry.v1" },
      { kind: "message", socket: 0, data: { type: "decided", status: "denied" } },
      { kind: "poll", socketOpen: expect.any(Boolean), dpop: true },
      { kind: "answer", status: 400, error: "access_denied" },
    ]);
  });

  it("the default client (the runtime's global WebSocket and fetch) receives the credential over the channel", async () => {
    expect(typeof globalThis.WebSocket).toBe("function");
    const agent = await createAccountAndAgent(server, { agentName: "channel-default" });
    const ferry = createClient({ baseUrl: server.url, apiKey: agent.apiKey });
    const secret = `sk-default-${randomBytes(12).toString("hex")}`;
    const req = await ferry.credentials.request({ description: "Default path", vaultKey: "default-path" });
    expect(req.interval).toBe(INTERVAL_SECONDS);
    const waiting = settle(ferry.credentials.waitForApproval(req.deviceCode, { timeout: WAIT_TIMEOUT_MS }));
    await approve(server, agent, req.userCode!, secret);
    const result = await waiting;
    if (!result.ok) throw result.error;
    expect(result.value.credentialValue).toBe(secret);
  });

  it("the same client without a WebSocket polls, and a wait shorter than the interval times out (the control)", async () => {
    const agent = await createAccountAndAgent(server, { agentName: "channel-control" });
    const ferry = createClient({ baseUrl: server.url, apiKey: agent.apiKey, webSocket: false });
    const req = await ferry.credentials.request({ description: "Control", vaultKey: "control" });
    await approve(server, agent, req.userCode!, "never-collected-here");
    // The operator approved at once, yet polling waits one interval first: 5 s of a 60 s interval is not enough.
    const result = await settle(ferry.credentials.waitForApproval(req.deviceCode, { timeout: 5_000 }));
    expect(result.ok ? undefined : (result.error as KeyferryError).code).toBe("TIMEOUT");
  });

  it("the keyferry CLI's request receives the credential over the channel and stores it", async () => {
    execFileSync(process.execPath, [join(ROOT, "sdk/build.mjs")], { cwd: ROOT, stdio: "inherit" });
    const agent = await createAccountAndAgent(server, { agentName: "channel-cli" });
    const home = mkdtempSync(join(tmpdir(), "keyferry-channel-cli-"));
    const env = { PATH: process.env.PATH ?? "", HOME: home, KEYFERRY_URL: server.url, KEYFERRY_API_KEY: agent.apiKey };
    const run = (args: string[]) => {
      const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
      const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
        child.on("close", (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        }),
      );
      return { done, stdout: () => stdout };
    };
    const init = await run(["init"]).done;
    expect(init.code, init.stderr).toBe(0);

    const secret = `tok-channel-${randomBytes(10).toString("hex")}`;
    // --timeout 45 with a 60 s interval: exit 5 (timeout) unless the socket announced the decision.
    const request = run(["request", "--description", "CLI channel", "--vault-key", "cli-channel", "--timeout", "45", "--no-qr"]);
    let userCode: string | undefined;
    for (const deadline = Date.now() + 60_000; !userCode && Date.now() < deadline; ) {
      userCode = /Code:\s+([A-Z]{4}-[A-Z]{4})/.exec(request.stdout())?.[1];
      if (!userCode) await sleep(50);
    }
    expect(userCode, request.stdout()).toBeDefined();
    await approve(server, agent, userCode!, secret);
    // After delivery, local workerd keeps the closed socket's TCP connection until the request's object
    // is evicted (10 s idle). Keep the object busy (each poll reaches it) while the CLI finishes: it must
    // exit on its own, not when the server finally drops the connection.
    // The emailed link reaches the object without a device code (which the CLI never prints) and decides nothing.
    const email = await waitForEmail(server, (e) => e.text.includes(userCode!), 15_000);
    const linkToken = /\/approve#link=([\w.-]+)/.exec(email.text)?.[1];
    expect(linkToken, email.text).toBeDefined();
    let exited = false;
    void request.done.then(() => (exited = true));
    let wakeUps = 0;
    while (!exited && wakeUps < 15) {
      await sleep(2_000);
      if (exited) break;
      expect((await lookup(server, { link_token: linkToken! })).res.status).toBe(404);
      wakeUps += 1;
    }
    expect(exited, `the CLI had not exited after ${wakeUps} look-ups kept the request's object awake`).toBe(true);
    const outcome = await request.done;
    expect(outcome.code, outcome.stderr).toBe(0);
    expect(outcome.stdout + outcome.stderr).not.toContain(secret);

    const got = await run(["get", "cli-channel"]).done;
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout).toBe(secret);
  });

  it("a CIBA request's waiter (auth_req_id and the agent's API key) hears the decision, then the token request delivers", async () => {
    const agent = await createAccountAndAgent(server, { agentName: "channel-ciba" });
    const basic = { authorization: `Basic ${Buffer.from(`${encodeURIComponent(agent.agentId)}:${encodeURIComponent(agent.apiKey)}`).toString("base64")}` };
    const vaultKey = `ciba-channel-${randomBytes(4).toString("hex")}`;
    const started = await api<{ auth_req_id: string; interval: number }>(
      server, "POST", "/oauth/bc-authorize",
      new URLSearchParams({ login_hint: agent.operatorEmail, binding_message: "Channel 9", description: "CIBA over the channel", vault_key: vaultKey }),
      basic,
    );
    expect(started.status, started.text).toBe(200);
    expect(started.json.interval).toBe(INTERVAL_SECONDS);
    const authReqId = started.json.auth_req_id;
    const protocols = ["keyferry.v1", `keyferry.auth-req-id.${authReqId}`];

    // The API key must be this agent's: a wrong key is refused before the upgrade, another agent's too.
    const wrongKey = await tryUpgrade(server, protocols, { authorization: "Bearer kf_not_a_real_key" });
    expect(wrongKey.status).toBe(401);
    expect(wrongKey.json.error).toBe("invalid_client");
    const other = await createAccountAndAgent(server, { agentName: "someone-else" });
    const otherAgent = await tryUpgrade(server, protocols, { authorization: `Bearer ${other.apiKey}` });
    expect(otherAgent.status).toBe(400);
    expect(otherAgent.json.error).toBe("invalid_grant");

    const waiter = openWaitSocket(server, protocols, { authorization: `Bearer ${agent.apiKey}` });
    await waiter.opened;
    expect(waiter.ws.protocol).toBe("keyferry.v1");

    // The operator decides from the emailed one-click link (a push request has no user code).
    const email = await waitForEmail(server, (e) => e.text.includes(vaultKey), 15_000);
    const linkToken = /\/approve#link=([\w.-]+)/.exec(email.text)?.[1];
    expect(linkToken, email.text).toBeDefined();
    const found = await lookup(server, { link_token: linkToken! });
    expect(found.res.status, found.res.text).toBe(200);
    const decided = await decide(server, found.cookie, { approval_token: found.res.json.approval_token, decision: "approve", credential_value: "AKIA-channel" });
    expect(decided.status, decided.text).toBe(200);

    expect(await within(waiter.message, 30_000, "no message on the socket")).toEqual({ type: "decided", status: "approved" });
    // Served at once although the interval is 60 s: the first poll, never slow_down.
    const tokens = await api<{ access_token?: string; token_type?: string; vault_key?: string; error?: string }>(
      server, "POST", "/oauth/token",
      new URLSearchParams({ grant_type: "urn:openid:params:grant-type:ciba", auth_req_id: authReqId }),
      basic,
    );
    expect(tokens.status, tokens.text).toBe(200);
    expect(tokens.json).toMatchObject({ access_token: "AKIA-channel", token_type: "Bearer", vault_key: vaultKey });
    expect(await waiter.closed).toBe(1000);

    const finished = await tryUpgrade(server, protocols, { authorization: `Bearer ${agent.apiKey}` });
    expect(finished.status).toBe(400);
    expect(finished.json.error).toBe("invalid_grant");
  });
});

describe("expiry over the return channel against wrangler dev", () => {
  const TTL_SECONDS = 8;
  const server = useDevServer({ vars: { POLL_INTERVAL_SECONDS: String(INTERVAL_SECONDS), REQUEST_TTL_SECONDS: String(TTL_SECONDS) } });

  it("the SDK hears `expired` at the TTL and fails with EXPIRED_TOKEN without polling at all", async () => {
    const agent = await createAccountAndAgent(server, { agentName: "channel-expired" });
    const trace = traceSdk();
    const ferry = createClient({ baseUrl: server.url, apiKey: agent.apiKey, fetch: trace.fetch, webSocket: trace.webSocket });
    const req = await ferry.credentials.request({ description: "Nobody answers", vaultKey: "expiring" });
    expect(req.expiresIn).toBe(TTL_SECONDS);
    const result = await settle(ferry.credentials.waitForApproval(req.deviceCode, { timeout: WAIT_TIMEOUT_MS }));
    expect(result.ok ? undefined : (result.error as KeyferryError).code).toBe("EXPIRED_TOKEN");
    expect(trace.steps.filter((step) => step.kind !== "close")).toEqual([
      { kind: "open", socket: 0, protocol: "keyferry.v1" },
      { kind: "message", socket: 0, data: { type: "expired" } },
    ]);
  });
});
