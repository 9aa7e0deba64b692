import { env } from "cloudflare:workers";
import { evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { approve, auditUntil, bearer, call, newAgent, poll, requestCredential, type Answer, type PollAnswer } from "./support/api";
import type { DeviceAuthorizationBody } from "../../core/wire";
import { dpopKey, proof, waitProof } from "./support/dpop";
import { deviceCodeProtocols, openWait } from "./support/wait";

/** README, "Return channel": a wait answers by the poll's rules, costs a bounded number of sockets, and only listens. */
const boundRequest = async (jkt: string) => {
  const agent = await newAgent();
  const issued = (await call<Answer<DeviceAuthorizationBody>>("POST", "/v1/credentials/request", { headers: bearer(agent.apiKey), json: { description: "d", vault_key: "v", dpop_jkt: jkt } })).body;
  return { ...agent, issued };
};

describe("return channel, by the poll's rules", { timeout: 30_000 }, () => {
  it("refuses a wait on a DPoP-bound request without a proof by its key, and accepts one by subprotocol or header", async () => {
    const key = await dpopKey();
    const thief = await dpopKey();
    const { operatorEmail, issued } = await boundRequest(key.jkt);
    await approve(issued.user_code, operatorEmail, "sk_bound");
    for (const protocols of [deviceCodeProtocols(issued.device_code), deviceCodeProtocols(issued.device_code, await waitProof(thief))]) {
      const refused = await openWait(protocols);
      expect(refused.status).toBe(400);
      expect(refused.body).toMatchObject({ error: "invalid_dpop_proof" });
    }
    // A proof for the poll (POST) is not one for the wait (GET).
    expect((await openWait(deviceCodeProtocols(issued.device_code, await proof(key)))).body).toMatchObject({ error: "invalid_dpop_proof" });
    const bySubprotocol = await openWait(deviceCodeProtocols(issued.device_code, await waitProof(key)));
    expect(bySubprotocol.status).toBe(101);
    expect(await bySubprotocol.message).toEqual({ type: "decided", status: "approved" });
    const byHeader = await openWait(deviceCodeProtocols(issued.device_code), { DPoP: await waitProof(key) });
    expect(await byHeader.message).toEqual({ type: "decided", status: "approved" });
    // Two proofs at once are refused (RFC 9449 §4.3), and a proof's jti works once.
    const reused = await waitProof(key);
    expect((await openWait(deviceCodeProtocols(issued.device_code, reused), { DPoP: await waitProof(key) })).body).toMatchObject({ error: "invalid_dpop_proof" });
    expect((await openWait(deviceCodeProtocols(issued.device_code, reused))).status).toBe(101);
    expect((await openWait(deviceCodeProtocols(issued.device_code, reused))).body).toMatchObject({ error: "invalid_dpop_proof" });
    // None of it consumed the credential.
    const delivered = await call<PollAnswer>("POST", "/v1/credentials/poll", { json: { device_code: issued.device_code }, headers: { DPoP: await proof(key) } });
    expect(delivered.body.credential_value).toBe("sk_bound");
  });

  it("raises the replay alarm once for a wait on a delivered code, with the caller's ip and user agent", async () => {
    const { apiKey, operatorEmail, accountId } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    await approve(issued.user_code, operatorEmail, "sk_once");
    expect((await poll(issued.device_code)).status).toBe(200);
    for (const ip of ["203.0.113.9", "203.0.113.10"]) {
      const refused = await openWait(deviceCodeProtocols(issued.device_code), { "CF-Connecting-IP": ip, "User-Agent": "probe/1.0" });
      expect(refused.body).toMatchObject({ error: "invalid_grant" });
    }
    // A later event of the same account, so the log has caught up with both waits.
    await requestCredential(apiKey);
    const events = await auditUntil(accountId, (e) => e.filter((x) => x.type === "requested").length === 2);
    const replays = events.filter((x) => x.type === "replay_detected");
    expect(replays).toHaveLength(1);
    expect(replays[0]).toMatchObject({ detail: { ip: "203.0.113.9", user_agent: "probe/1.0" } });
  });

  it("holds at most 4 sockets per request and refuses the next before the upgrade with 429 and Retry-After", async () => {
    const { apiKey } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    const open = [];
    for (let i = 0; i < 4; i++) open.push(await openWait(deviceCodeProtocols(issued.device_code)));
    expect(open.map((w) => w.status)).toEqual([101, 101, 101, 101]);
    const fifth = await openWait(deviceCodeProtocols(issued.device_code));
    expect(fifth.status).toBe(429);
    expect(fifth.body).toEqual({ error: "too_many_requests", error_description: expect.any(String) });
    expect(fifth.retryAfter).toBe("30");
    // Another request of the same agent has its own four.
    const other = (await requestCredential(apiKey)).body;
    expect((await openWait(deviceCodeProtocols(other.device_code))).status).toBe(101);
    // And the refusal counted as no poll.
    expect((await poll(issued.device_code)).body.error).toBe("authorization_pending");
  });

  it("holds 4 sockets on a bound request however many upgrades race (each asks its key's object first)", async () => {
    const key = await dpopKey();
    const { issued } = await boundRequest(key.jkt);
    const proofs = await Promise.all(Array.from({ length: 8 }, () => waitProof(key)));
    const waits = await Promise.all(proofs.map((p) => openWait(deviceCodeProtocols(issued.device_code, p))));
    expect(waits.map((w) => w.status).sort()).toEqual([101, 101, 101, 101, 429, 429, 429, 429]);
  });

  it("closes the socket with 1008 on any message from the client", async () => {
    const { apiKey } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    const waiter = await openWait(deviceCodeProtocols(issued.device_code));
    expect(waiter.status).toBe(101);
    waiter.send("hello");
    expect(await waiter.closed).toEqual({ code: 1008 });
  });
});

describe("DPoP jti across requests (RFC 9449 §11.1)", { timeout: 30_000 }, () => {
  it("refuses a proof on a second request bound to the same key once the first request saw it", async () => {
    const key = await dpopKey();
    const first = await boundRequest(key.jkt);
    const second = await boundRequest(key.jkt);
    await approve(second.issued.user_code, second.operatorEmail, "sk_second");
    const used = await proof(key);
    const pollWith = (deviceCode: string, dpop: string) => call<PollAnswer>("POST", "/v1/credentials/poll", { json: { device_code: deviceCode }, headers: { DPoP: dpop } });
    expect((await pollWith(first.issued.device_code, used)).body.error).toBe("authorization_pending");
    // The key's record is in storage, not only in memory.
    await evictDurableObject(env.DPOP_JTIS.get(env.DPOP_JTIS.idFromName(key.jkt)));
    expect((await pollWith(second.issued.device_code, used)).body.error).toBe("invalid_dpop_proof");
    // The same for a wait's proof.
    const waited = await waitProof(key);
    expect((await openWait(deviceCodeProtocols(first.issued.device_code, waited))).status).toBe(101);
    expect((await openWait(deviceCodeProtocols(second.issued.device_code, waited))).body).toMatchObject({ error: "invalid_dpop_proof" });
    // A fresh proof still delivers.
    expect((await pollWith(second.issued.device_code, await proof(key))).body.credential_value).toBe("sk_second");
  });
});
