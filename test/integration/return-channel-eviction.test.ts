import { env } from "cloudflare:workers";
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { approve, newAgent, normalized, poll, requestCredential } from "./support/api";
import { deviceCodeProtocols, openWait } from "./support/wait";

/** A waiting agent keeps no object in memory (Hibernation API): an evicted object still announces. */
describe("return channel across eviction", { timeout: 30_000 }, () => {
  it("announces the decision from a fresh instance after the object was evicted while the socket waited", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    const stub = env.REQUESTS.get(env.REQUESTS.idFromName(normalized(issued.user_code)));
    const waiter = await openWait(deviceCodeProtocols(issued.device_code));
    expect(waiter.status).toBe(101);
    const marker = Symbol.for("keyferry.test.instance");
    await runInDurableObject(stub, (instance) => void Object.assign(instance, { [marker]: true }));
    await evictDurableObject(stub);

    await approve(issued.user_code, operatorEmail, "sk_after_eviction");
    expect(await waiter.message).toEqual({ type: "decided", status: "approved" });
    expect(await waiter.closed).toEqual({ code: 1000 });
    // The instance that announced was a new one: the socket outlived the old instance.
    expect(await runInDurableObject(stub, (instance) => marker in instance)).toBe(false);
    expect((await poll(issued.device_code)).body.credential_value).toBe("sk_after_eviction");
  });
});
