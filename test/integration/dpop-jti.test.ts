import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";

/** durable-objects/dpop/README.md: a key's jtis are kept for their proofs' iat window, then forgotten. */
const keyObject = (name: string) => env.DPOP_JTIS.get(env.DPOP_JTIS.idFromName(name));

describe("DpopJtiDO", () => {
  it("answers seen for a jti within its window, and its alarm forgets only the jtis whose window passed", async () => {
    const stub = keyObject("jkt-window");
    const now = Date.now();
    expect(await stub.seen("old", now - 1)).toBe(false);
    expect(await stub.seen("live", now + 60_000)).toBe(false);
    expect(await stub.seen("live", now + 60_000)).toBe(true);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.seen("live", now + 60_000)).toBe(true);
    expect(await stub.seen("old", now + 60_000)).toBe(false);
  });

  it("erases itself when every window has passed", async () => {
    const stub = keyObject("jkt-done");
    expect(await stub.seen("a", Date.now() - 1)).toBe(false);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const tables = await runInDurableObject(stub, (_i, state) => state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'jti'").toArray());
    expect(tables).toEqual([]);
    expect(await runInDurableObject(stub, (_i, state) => state.storage.getAlarm())).toBeNull();
    // A later proof by the same key is remembered again.
    expect(await stub.seen("b", Date.now() + 60_000)).toBe(false);
    expect(await stub.seen("b", Date.now() + 60_000)).toBe(true);
  });
});
