import { env } from "cloudflare:workers";
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { approve, newAgent, normalized, poll, requestCredential } from "./support/api";
import { expireAndRunAlarm, leftInStorage } from "./support/expiry";
import { storedRow, toTableLayout } from "./support/request-row";
import { requestStub } from "../../worker/stubs";

/**
 * durable-objects/request/README.md, storage: the request is one key-value entry; a request made
 * before that layout (its `request` table, alive for at most one TTL) is served to the end.
 */
describe("a request stored in the table of an earlier release", { timeout: 30_000 }, () => {
  it("moves to its key when its object loads and is delivered exactly once to racing polls; the alarm leaves nothing", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    await approve(issued.user_code, operatorEmail, "sk_from_the_table");
    const stub = requestStub(env, normalized(issued.user_code));
    await runInDurableObject(stub, (_i, state) => toTableLayout(state, "v1.2"));
    expect(await leftInStorage(stub)).toEqual({ tables: [{ name: "request" }], keys: [] });
    // The upgrade: a new instance of the object, with the new code, finds the table.
    await evictDurableObject(stub);

    const racing = await Promise.all(Array.from({ length: 8 }, () => poll(issued.device_code)));
    expect(racing.filter((r) => r.status === 200).map((r) => r.body.credential_value)).toEqual(["sk_from_the_table"]);
    for (const other of racing.filter((r) => r.status !== 200)) expect(other.body.error).toBe("invalid_grant");
    expect(await leftInStorage(stub)).toEqual({ tables: [], keys: ["request"] });
    expect(await runInDurableObject(stub, (_i, state) => storedRow(state))).toMatchObject({ status: "delivered", payload: null });
    await evictDurableObject(stub);
    expect((await poll(issued.device_code)).body.error).toBe("invalid_grant");
    expect(await expireAndRunAlarm(stub)).toEqual({ ran: true, tables: [], keys: [] });
  });
});
