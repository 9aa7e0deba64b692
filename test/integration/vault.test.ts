import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { vaultStub } from "../../worker/stubs";
import { bearer, call, newAgent, type Answer } from "./support/api";
import type { VaultItemBody, VaultListBody, VaultStoredBody } from "../../core/wire";

describe("zero-knowledge vault", () => {
  it("stores, lists, reads and deletes an agent's ciphertext", async () => {
    const { apiKey } = await newAgent();
    const auth = bearer(apiKey);
    const put = await call<Answer<VaultStoredBody>>("PUT", "/v1/vault/openai-api-key", { headers: auth, json: { ciphertext: "eyJhbGciOiJkaXIifQ..iv.ct.tag" } });
    expect(put.status).toBe(200);
    expect(put.body).toEqual({ vault_key: "openai-api-key", updated_at: expect.any(String) });
    expect((await call<Answer<VaultItemBody>>("GET", "/v1/vault/openai-api-key", { headers: auth })).body).toEqual({
      vault_key: "openai-api-key",
      ciphertext: "eyJhbGciOiJkaXIifQ..iv.ct.tag",
      updated_at: put.body.updated_at,
    });
    expect((await call<Answer<VaultListBody>>("GET", "/v1/vault", { headers: auth })).body).toEqual({ items: [{ vault_key: "openai-api-key", updated_at: put.body.updated_at }] });
    expect((await call<Answer>("DELETE", "/v1/vault/openai-api-key", { headers: auth })).status).toBe(204);
    const gone = await call<Answer<VaultItemBody>>("GET", "/v1/vault/openai-api-key", { headers: auth });
    expect(gone.status).toBe(404);
    expect(gone.body.error).toBe("not_found");
  });

  it("isolates agents from each other", async () => {
    const a = await newAgent();
    const b = await newAgent();
    await call<Answer<VaultStoredBody>>("PUT", "/v1/vault/shared-name", { headers: bearer(a.apiKey), json: { ciphertext: "from-a" } });
    expect((await call<Answer<VaultItemBody>>("GET", "/v1/vault/shared-name", { headers: bearer(b.apiKey) })).status).toBe(404);
    expect((await call<Answer<VaultListBody>>("GET", "/v1/vault", { headers: bearer(b.apiKey) })).body).toEqual({ items: [] });
  });

  it("enforces item size, key format and authentication", async () => {
    const { apiKey } = await newAgent();
    const auth = bearer(apiKey);
    const big = await call<Answer<VaultStoredBody>>("PUT", "/v1/vault/k", { headers: auth, json: { ciphertext: "x".repeat(65_537) } });
    expect(big.status).toBe(400);
    expect(big.body.error_description).toContain("ciphertext");
    expect((await call<Answer<VaultStoredBody>>("PUT", "/v1/vault/k", { headers: auth, json: { ciphertext: "x".repeat(200_000) } })).status).toBe(413);
    expect((await call<Answer<VaultStoredBody>>("PUT", "/v1/vault/-bad", { headers: auth, json: { ciphertext: "x" } })).status).toBe(400);
    expect((await call<Answer<VaultStoredBody>>("PUT", "/v1/vault/k", { json: { ciphertext: "x" } })).status).toBe(401);
  });

  it("refuses the 1001st item with 409 vault_full, but still updates existing ones", async () => {
    const { apiKey, agentId } = await newAgent();
    expect((await call<Answer<VaultStoredBody>>("PUT", "/v1/vault/item-0", { headers: bearer(apiKey), json: { ciphertext: "c" } })).status).toBe(200);
    await runInDurableObject(vaultStub(env, agentId), (_i, state) => {
      for (let i = 1; i < 1000; i++) state.storage.sql.exec("INSERT INTO items (vault_key, ciphertext, updated_at) VALUES (?, 'c', 0)", `item-${i}`);
    });
    const full = await call<Answer<VaultStoredBody>>("PUT", "/v1/vault/one-more", { headers: bearer(apiKey), json: { ciphertext: "x" } });
    expect(full.status).toBe(409);
    expect(full.body.error).toBe("vault_full");
    expect((await call<Answer<VaultStoredBody>>("PUT", "/v1/vault/item-7", { headers: bearer(apiKey), json: { ciphertext: "new" } })).status).toBe(200);
  });
});
