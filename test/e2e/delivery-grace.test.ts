// "Nothing lost to a dropped response" (README) against a real `wrangler dev`: a DPoP-bound delivery
// whose answer never reached the agent (a dropped connection, a proxy that loses it, a server killed
// with SIGKILL right after it) is served again to the agent's key within DELIVERY_GRACE_SECONDS, and
// to nobody else; the SDK rides it out and acknowledges.
import { randomBytes } from "node:crypto";
import { createConnection } from "node:net";
import { describe, expect, it } from "vitest";
import { createClient } from "../../sdk/src/index";
import { createDpopKey, dpopProof, type DpopKey } from "../../sdk/src/dpop";
import { operatorDecides } from "./support/approval";
import { api, createAccountAndAgent, type AccountAndAgent, type DevServer } from "./support/dev-server";
import { startDroppingProxy, type DroppingProxy } from "./support/dropping-proxy";
import { useDevServer } from "./support/use-dev-server";
import { sleep } from "../support/sleep";
const secret = () => `sk_live_${randomBytes(12).toString("hex")}`;

/** Sends a poll over a raw socket and drops the connection at the first byte of the answer, unread. */
async function pollAndDrop(server: DevServer, deviceCode: string, proof: string): Promise<void> {
  const url = new URL(server.url);
  const body = JSON.stringify({ device_code: deviceCode });
  await new Promise<void>((done, fail) => {
    const socket = createConnection({ host: url.hostname, port: Number(url.port) }, () => {
      socket.write(
        `POST /v1/credentials/poll HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nDPoP: ${proof}\r\nConnection: close\r\n\r\n${body}`,
      );
    });
    socket.once("data", () => {
      socket.destroy();
      done();
    });
    socket.once("error", fail);
  });
}

const proofFor = (server: DevServer, key: DpopKey, path = "/v1/credentials/poll") => dpopProof(key, "POST", `${server.url}${path}`, Date.now());
const poll = async (server: DevServer, deviceCode: string, key: DpopKey) =>
  api(server, "POST", "/v1/credentials/poll", { device_code: deviceCode }, { dpop: await proofFor(server, key) });
const ack = async (server: DevServer, deviceCode: string, key: DpopKey) =>
  api(server, "POST", "/v1/credentials/ack", { device_code: deviceCode }, { dpop: await proofFor(server, key, "/v1/credentials/ack") });

/** The account's audit event types, oldest first, once `done` holds. */
async function auditUntil(server: DevServer, accountId: string, done: (types: string[]) => boolean): Promise<string[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const res = await api<{ events: Array<{ type: string }> }>(server, "GET", `/v1/admin/accounts/${accountId}/audit`, undefined, { authorization: `Bearer ${server.adminToken}` });
    const types = res.json.events.map((e) => e.type).reverse();
    if (done(types)) return types;
    if (Date.now() > deadline) throw new Error(`the audit log never settled: ${JSON.stringify(types)}`);
    await sleep(200);
  }
}

/** A request bound to `key` (plain mode), approved with `value`. */
async function approvedBoundRequest(server: DevServer, agent: AccountAndAgent, key: DpopKey, value: string): Promise<string> {
  const issued = await api<{ device_code: string; user_code: string }>(
    server, "POST", "/v1/credentials/request",
    { description: "Stripe secret key", vault_key: "stripe-sk", dpop_jkt: key.jkt },
    { authorization: `Bearer ${agent.apiKey}` },
  );
  expect(issued.status, issued.text).toBe(200);
  await operatorDecides(server, issued.json.user_code, agent.operatorEmail, { decision: "approve", credential_value: value });
  return issued.json.device_code;
}

describe("a dropped delivering answer, polled again", () => {
  const GRACE_SECONDS = 15;
  const server = useDevServer({ vars: { POLL_INTERVAL_SECONDS: "1", DELIVERY_GRACE_SECONDS: String(GRACE_SECONDS) } });

  it("the same key gets the same 200 without an alarm; another key is refused with one; after ack, refused", async () => {
    const agent = await createAccountAndAgent(server);
    const key = await createDpopKey();
    const value = secret();
    const deviceCode = await approvedBoundRequest(server, agent, key, value);

    await pollAndDrop(server, deviceCode, await proofFor(server, key));
    await auditUntil(server, agent.accountId, (types) => types.includes("delivered"));
    const again = await poll(server, deviceCode, key);
    expect(again.status, again.text).toBe(200);
    expect(again.json).toEqual({ vault_key: "stripe-sk", description: "Stripe secret key", credential_value: value });
    const quiet = await auditUntil(server, agent.accountId, (types) => types.includes("redelivered"));
    expect(quiet).not.toContain("replay_detected");

    const stranger = await poll(server, deviceCode, await createDpopKey());
    expect(stranger).toMatchObject({ status: 400, json: { error: "invalid_grant" } });
    await auditUntil(server, agent.accountId, (types) => types.includes("replay_detected"));

    expect((await ack(server, deviceCode, key)).status).toBe(204);
    expect(await poll(server, deviceCode, key)).toMatchObject({ status: 400, json: { error: "invalid_grant" } });
  });

  it("after the window, the same key gets invalid_grant", async () => {
    const agent = await createAccountAndAgent(server);
    const key = await createDpopKey();
    const deviceCode = await approvedBoundRequest(server, agent, key, secret());
    await pollAndDrop(server, deviceCode, await proofFor(server, key));
    await auditUntil(server, agent.accountId, (types) => types.includes("delivered"));
    await sleep((GRACE_SECONDS + 1) * 1000);
    expect(await poll(server, deviceCode, key)).toMatchObject({ status: 400, json: { error: "invalid_grant" } });
    expect(await auditUntil(server, agent.accountId, (types) => types.includes("replay_detected"))).not.toContain("redelivered");
  });
});

describe("the SDK through a connection that loses the delivering answer", () => {
  const server = useDevServer({ vars: { POLL_INTERVAL_SECONDS: "1" } });

  /**
   * The SDK's whole handoff (a key-bound request, approved at once) through `proxy`; returns what the
   * proxy passed on besides the request and `authorization_pending` polls.
   */
  async function handoffThrough(proxy: DroppingProxy, agent: AccountAndAgent, timeout: number): Promise<string[]> {
    try {
      const ferry = createClient({ baseUrl: proxy.url, apiKey: agent.apiKey, webSocket: false });
      const req = await ferry.credentials.request({ description: "Stripe secret key", vaultKey: "stripe-sk", endToEnd: false });
      const value = secret();
      await operatorDecides(server, req.userCode!, agent.operatorEmail, { decision: "approve", credential_value: value });
      expect((await ferry.credentials.waitForApproval(req.deviceCode, { timeout })).credentialValue).toBe(value);
      return proxy.log.filter((e) => e.path !== "/v1/credentials/request" && e.status !== 400).map((e) => `${e.path} ${e.status}`);
    } finally {
      await proxy.close();
    }
  }
  const RETRIED_AND_ACKNOWLEDGED = ["/v1/credentials/poll dropped", "/v1/credentials/poll 200", "/v1/credentials/ack 204"];

  it("gets the credential when the first delivering answer is dropped, and acknowledges", async () => {
    const agent = await createAccountAndAgent(server);
    expect(await handoffThrough(await startDroppingProxy(server.url), agent, 30_000)).toEqual(RETRIED_AND_ACKNOWLEDGED);
    expect(await auditUntil(server, agent.accountId, (types) => types.includes("redelivered"))).not.toContain("replay_detected");
  });

  it("gets the credential when the server is killed (SIGKILL) right after delivering and restarted on the same storage", async () => {
    const agent = await createAccountAndAgent(server);
    const proxy = await startDroppingProxy(server.url, () => server.restart({ kill: true }));
    expect(await handoffThrough(proxy, agent, 90_000)).toEqual(RETRIED_AND_ACKNOWLEDGED);
    expect(server.logs()).toContain("signal SIGKILL");
  });
});
