import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { vaultStub } from "../../worker/stubs";
import { admin, bearer, call, newAgent, type Answer } from "./support/api";
import type { VaultItemBody, VaultListBody, VaultStoredBody } from "../../core/wire";

/** The tables in the agent's vault object (opening it runs its constructor, which must write nothing). */
const tables = (agentId: string) =>
  runInDurableObject(vaultStub(env, agentId), (_instance, state) =>
    state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf%'").toArray().map((row) => row.name),
  );

describe("vault storage: made on the first write, erased with its agent", () => {
  it("reads, misses and deletes on an empty vault make no table", async () => {
    const { apiKey, agentId } = await newAgent();
    const auth = bearer(apiKey);
    expect((await call<Answer<VaultListBody>>("GET", "/v1/vault", { headers: auth })).body).toEqual({ items: [] });
    expect((await call<Answer<VaultItemBody>>("GET", "/v1/vault/nothing", { headers: auth })).status).toBe(404);
    expect((await call<Answer>("DELETE", "/v1/vault/nothing", { headers: auth })).status).toBe(204);
    expect(await tables(agentId)).toEqual([]);
    expect((await call<Answer<VaultStoredBody>>("PUT", "/v1/vault/first", { headers: auth, json: { ciphertext: "c" } })).status).toBe(200);
    expect(await tables(agentId)).toEqual(["items"]);
  });

  it("deleting an agent erases its vault entirely", async () => {
    const { apiKey, agentId, accountId } = await newAgent();
    const auth = bearer(apiKey);
    for (const key of ["a", "b"]) expect((await call<Answer<VaultStoredBody>>("PUT", `/v1/vault/${key}`, { headers: auth, json: { ciphertext: `secret-${key}` } })).status).toBe(200);
    expect((await call<Answer>("DELETE", `/v1/admin/accounts/${accountId}/agents/${agentId}`, { headers: admin })).status).toBe(204);
    expect(await tables(agentId)).toEqual([]);
    expect((await call<Answer<VaultListBody>>("GET", "/v1/vault", { headers: auth })).status).toBe(401);
    // The erased object answers as empty to whoever asks next.
    expect(await vaultStub(env, agentId).list()).toEqual([]);
  });
});
