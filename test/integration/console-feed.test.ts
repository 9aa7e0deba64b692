import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { exportJWK, generateKeyPair } from "jose";
import { describe, expect, it } from "vitest";
import { CONSOLE_OPERATOR } from "../../durable-objects/account/console-feed";
import { accountStub } from "../../worker/stubs";
import { approve, auditUntil, newAgent, normalized, poll, requestCredential } from "./support/api";

/** A console's socket on the account object, as the worker opens it after checking the session. */
async function consoleSocket(accountId: string, operatorId = "opr_test") {
  const response = await accountStub(env, accountId).fetch(
    new Request("https://account.internal/console", { headers: { Upgrade: "websocket", [CONSOLE_OPERATOR]: operatorId } }),
  );
  const ws = response.webSocket!;
  ws.accept();
  const messages: string[] = [];
  let waiting: (() => void) | null = null;
  ws.addEventListener("message", (event) => {
    messages.push(String(event.data));
    waiting?.();
  });
  const closed = new Promise<number>((resolve) => ws.addEventListener("close", (event) => resolve(event.code)));
  /** Resolves once `count` messages have arrived. */
  const received = (count: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${messages.length} of ${count} messages`)), 5000);
      const check = () => {
        if (messages.length >= count) {
          clearTimeout(timer);
          resolve();
        }
      };
      waiting = check;
      check();
    });
  return { status: response.status, ws, messages, received, closed };
}

describe("the console's view of an account's pending requests", () => {
  it("lists a request once confirmed, with its summary and keys, and no longer once decided", async () => {
    const { accountId, apiKey, operatorEmail } = await newAgent();
    const issued = await requestCredential(apiKey, { description: "<b>deploy</b> key", vault_key: "deploy" });
    const listed = await accountStub(env, accountId).consoleRequests();
    expect(listed.reason).toBe("found");
    const requests = listed.reason === "found" ? listed.requests : [];
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({
      agent: { name: "build-bot", email: "bot@example.com" },
      description: "<b>deploy</b> key",
      vaultKey: "deploy",
      publicKey: null,
      encryptionKey: { kty: "EC", crv: "P-256" },
    });
    const one = await accountStub(env, accountId).consoleRequest(requests[0]!.requestId);
    expect(one).toMatchObject({ reason: "found", userCode: normalized(issued.body.user_code) });

    await approve(issued.body.user_code, operatorEmail, "s3cret");
    await auditUntil(accountId, (events) => events.some((e) => e.type === "approved"));
    // Approved but not yet delivered: the slot is still held, the request no longer waits for anyone.
    expect(await accountStub(env, accountId).consoleRequests()).toEqual({ reason: "found", requests: [] });
    expect((await accountStub(env, accountId).consoleRequest(requests[0]!.requestId)).reason).toBe("not_found");
    expect((await poll(issued.body.device_code)).status).toBe(200);
  });

  it("keeps an end-to-end request's public key for the fingerprint", async () => {
    const { accountId, apiKey } = await newAgent();
    const { publicKey } = await generateKeyPair("ECDH-ES+A256KW", { crv: "P-256", extractable: true });
    const agentKey = await exportJWK(publicKey);
    await requestCredential(apiKey, { public_key: agentKey });
    const listed = await accountStub(env, accountId).consoleRequests();
    expect(listed.reason === "found" && listed.requests[0]).toMatchObject({ publicKey: agentKey, encryptionKey: agentKey });
  });

  it("announces `requests_changed` on a socket when a request arrives and when it is decided", async () => {
    const { accountId, apiKey, operatorEmail } = await newAgent();
    const socket = await consoleSocket(accountId);
    expect(socket.status).toBe(101);
    const issued = await requestCredential(apiKey);
    await socket.received(1);
    expect(JSON.parse(socket.messages[0]!)).toEqual({ type: "requests_changed" });
    await approve(issued.body.user_code, operatorEmail, "s3cret");
    await socket.received(2);
    expect(socket.messages.every((m) => m === '{"type":"requests_changed"}')).toBe(true);
  });

  it("refuses an upgrade that names no operator, and counts no socket", async () => {
    const { accountId } = await newAgent();
    const stub = accountStub(env, accountId);
    const refused = await stub.fetch(new Request("https://account.internal/console", { headers: { Upgrade: "websocket" } }));
    expect(refused.status).toBe(400);
    expect(await runInDurableObject(stub, (_instance, state) => state.getWebSockets().length)).toBe(0);
  });
});
