import { env } from "cloudflare:workers";
import { listDurableObjectIds } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { signHandle } from "../../worker/handles";
import { approve, newAgent, poll, requestCredential } from "./support/api";
import { deviceCodeProtocols, openWait } from "./support/wait";

/** An unknown, malformed or finished code is refused before the upgrade, with the poll's 400 body. */
describe("return channel refusals", { timeout: 30_000 }, () => {
  it("refuses forged and malformed codes without touching any Durable Object", async () => {
    // A well-formed code for a user code no request ever had, with one character of its tag changed.
    const { handle } = await signHandle(env, "device_code", { userCode: "ZZZZZZZZ", expiresAt: Date.now() + 60_000, secret: new Uint8Array(32) });
    const forged = `${handle.slice(0, -2)}${handle.at(-2) === "A" ? "B" : "A"}${handle.at(-1)}`;
    const before = (await listDurableObjectIds(env.REQUESTS)).map((id) => id.toString());
    for (const code of [forged, "not-a-code", "kfd1.ZZZZZZZZ.1.x.y"]) {
      const refused = await openWait(deviceCodeProtocols(code));
      expect(refused.status).toBe(400);
      expect(refused.body).toEqual({ error: "invalid_grant", error_description: expect.any(String) });
    }
    const after = (await listDurableObjectIds(env.REQUESTS)).map((id) => id.toString());
    expect(after).toEqual(before);
    expect(after).not.toContain(env.REQUESTS.idFromName("ZZZZZZZZ").toString());
  });

  it("refuses an expired code from the code itself", async () => {
    const { handle } = await signHandle(env, "device_code", { userCode: "ZZZZZZZX", expiresAt: Date.now() - 1, secret: new Uint8Array(32) });
    const refused = await openWait(deviceCodeProtocols(handle));
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error: "expired_token" });
  });

  it("refuses a delivered or denied request with the poll's answer", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    await approve(issued.user_code, operatorEmail, "sk_once");
    expect((await poll(issued.device_code)).status).toBe(200);
    const refused = await openWait(deviceCodeProtocols(issued.device_code));
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error: "invalid_grant" });
  });

  it("refuses a request without the subprotocols or the upgrade", async () => {
    const { apiKey } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    expect((await openWait([`keyferry.device-code.${issued.device_code}`])).body).toMatchObject({ error: "invalid_request" });
    expect((await openWait(["keyferry.v1"])).body).toMatchObject({ error: "invalid_request" });
    expect((await openWait([...deviceCodeProtocols(issued.device_code), `keyferry.device-code.${issued.device_code}x`])).body).toMatchObject({ error: "invalid_request" });
    expect((await openWait(deviceCodeProtocols(issued.device_code), { Upgrade: "h2c" })).status).toBe(426);
    // None of that counted as a poll.
    expect((await poll(issued.device_code)).body.error).toBe("authorization_pending");
  });
});
