import { env } from "cloudflare:workers";
import { listDurableObjectIds, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { admin, call, newAgent, type Answer } from "./support/api";
import type { AccountUpdatedBody, AgentCreatedBody, AuditLogBody, BackchannelAuthenticationBody, DeviceAuthorizationBody, TokenBody, VaultListBody, VaultStoredBody } from "../../core/wire";

/**
 * Unauthenticated traffic makes no storage. A forged API key (right shape, made-up IDs,
 * or a real key with one character changed) is refused at the edge by its tag, before any Durable
 * Object is reached; and an object reached for an account that does not exist writes nothing.
 */

const ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789";
const TAG_LAST = "AEIMQUYcgkosw048";
const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const pick = (alphabet: string, n: number) => [...crypto.getRandomValues(new Uint8Array(n))].map((b) => alphabet[b % alphabet.length]).join("");
const randomId = (prefix: string) => `${prefix}_${pick(ID_ALPHABET, 20)}`;
/** A key shaped exactly like `model` (a real one), with other IDs and random secret parts. */
const forgedKey = (model: string, accountId = randomId("acc"), agentId = randomId("agt")) => {
  const [prefix, , , ...rest] = model.split(".");
  const parts = rest.map((part) => pick(B64, part.length - 1) + pick(TAG_LAST, 1));
  return [prefix, accountId, agentId, ...parts].join(".");
};

const basic = (agentId: string, apiKey: string) => ({ Authorization: `Basic ${btoa(`${agentId}:${apiKey}`)}` });
const objectCounts = async () => ({
  accounts: (await listDurableObjectIds(env.ACCOUNTS)).length,
  vaults: (await listDurableObjectIds(env.VAULTS)).length,
  requests: (await listDurableObjectIds(env.REQUESTS)).length,
});

/** Every route that takes an API key, with `key` (and its agent ID) as the credential. */
function callsWith(agentId: string, key: string) {
  const form = { description: "d", vault_key: "v" };
  return [
    () => call<Answer<VaultListBody>>("GET", "/v1/vault", { headers: { Authorization: `Bearer ${key}` } }),
    () => call<Answer<VaultStoredBody>>("PUT", "/v1/vault/item", { headers: { Authorization: `Bearer ${key}` }, json: { ciphertext: "c" } }),
    () => call<Answer<DeviceAuthorizationBody>>("POST", "/v1/credentials/request", { headers: { Authorization: `Bearer ${key}` }, json: form }),
    () => call<Answer<DeviceAuthorizationBody>>("POST", "/oauth/device_authorization", { headers: basic(agentId, key), form }),
    () => call<Answer<BackchannelAuthenticationBody>>("POST", "/oauth/bc-authorize", { headers: basic(agentId, key), form }),
    () => call<Answer<TokenBody>>("POST", "/oauth/token", { form: { grant_type: "urn:openid:params:grant-type:ciba", auth_req_id: "x", client_id: agentId, client_secret: key } }),
  ];
}

describe("forged API keys never reach a Durable Object", () => {
  it("refuses 60 forged keys on every key-taking route with 401 invalid_client and creates no object", async () => {
    const real = await newAgent();
    const before = await objectCounts();
    const tampered = real.apiKey.slice(0, -2) + (real.apiKey.at(-2) === "A" ? "B" : "A") + real.apiKey.at(-1);
    const keys: Array<[string, string]> = [
      [real.agentId, tampered],
      // A real account and agent, another tag: the IDs alone do not open anything.
      [real.agentId, forgedKey(real.apiKey, real.accountId, real.agentId)],
    ];
    while (keys.length < 10) {
      const agentId = randomId("agt");
      keys.push([agentId, forgedKey(real.apiKey, randomId("acc"), agentId)]);
    }
    let calls = 0;
    for (const [agentId, key] of keys) {
      for (const send of callsWith(agentId, key)) {
        const answer = await send();
        calls++;
        expect(answer.status).toBe(401);
        expect(answer.body).toEqual({ error: "invalid_client", error_description: "Client authentication failed." });
        expect(answer.headers.get("WWW-Authenticate")).toMatch(/^(Basic|Bearer) realm="keyferry"$/);
      }
    }
    expect(calls).toBeGreaterThanOrEqual(60);
    expect(await objectCounts()).toEqual(before);
    // The real key still works: the tag check refuses forgeries, not keys.
    expect((await call<Answer<VaultListBody>>("GET", "/v1/vault", { headers: { Authorization: `Bearer ${real.apiKey}` } })).status).toBe(200);
  });

  it("an admin read of an account that does not exist makes no tables (no writes in the constructor)", async () => {
    // The plugin lists every object that was instantiated, written or not, so the tables are counted.
    for (let i = 0; i < 3; i++) {
      const id = randomId("acc");
      expect((await call<Answer<AccountUpdatedBody>>("GET", `/v1/admin/accounts/${id}`, { headers: admin })).status).toBe(404);
      expect((await call<Answer<AuditLogBody>>("GET", `/v1/admin/accounts/${id}/audit`, { headers: admin })).status).toBe(404);
      expect((await call<Answer<AgentCreatedBody>>("POST", `/v1/admin/accounts/${id}/agents`, { headers: admin, json: { name: "x" } })).status).toBe(404);
      expect((await call("DELETE", `/v1/admin/accounts/${id}/agents/${randomId("agt")}`, { headers: admin })).status).toBe(404);
      const tables = await runInDurableObject(env.ACCOUNTS.get(env.ACCOUNTS.idFromName(id)), (_instance, state) =>
        state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'").toArray(),
      );
      expect(tables).toEqual([]);
    }
  });
});
