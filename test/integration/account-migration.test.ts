// An account made before the AccountDO's schema_version row (v1) is brought to the current tables
// when its object loads: rows kept, the webhook format moved onto the account row, the version set.
import { env } from "cloudflare:workers";
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ACCOUNT_SCHEMA_VERSION } from "../../durable-objects/account/account-schema";

/** The v1 tables as the previous release made them (AUTOINCREMENT, indexes, a settings table). */
const V1 = [
  "CREATE TABLE account (id INTEGER PRIMARY KEY CHECK (id = 1), account_id TEXT NOT NULL, name TEXT NOT NULL, operator_email TEXT NOT NULL, webhook_url TEXT, webhook_secret TEXT, created_at INTEGER NOT NULL)",
  "CREATE TABLE agents (agent_id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT, key_hash TEXT NOT NULL, ping_endpoint TEXT, created_at INTEGER NOT NULL)",
  "CREATE TABLE active_requests (request_id TEXT PRIMARY KEY, user_code TEXT NOT NULL, agent_id TEXT NOT NULL, expires_at INTEGER NOT NULL)",
  "CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, type TEXT NOT NULL, request_id TEXT, agent_id TEXT, actor TEXT, detail TEXT)",
  "CREATE INDEX audit_by_time ON audit (at)",
  "CREATE TABLE outbox (id TEXT PRIMARY KEY, channel TEXT NOT NULL, type TEXT NOT NULL, request_id TEXT, agent_id TEXT, destination TEXT NOT NULL, body TEXT NOT NULL, bearer TEXT, created_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL, last_status INTEGER)",
  "CREATE INDEX outbox_due ON outbox (next_at)",
  "CREATE TABLE notice_window (id INTEGER PRIMARY KEY CHECK (id = 1), started_at INTEGER NOT NULL, sent INTEGER NOT NULL, held_back INTEGER NOT NULL)",
  "CREATE TABLE notify_settings (id INTEGER PRIMARY KEY CHECK (id = 1), webhook_format TEXT NOT NULL)",
];

describe("AccountDO schema versions", () => {
  it("migrates a v1 account when its object loads, keeping its rows", async () => {
    const accountId = `acc_${crypto.randomUUID().replace(/-/g, "")}`;
    const stub = env.ACCOUNTS.get(env.ACCOUNTS.idFromName(accountId));
    const later = Date.now() + 3_600_000;
    await runInDurableObject(stub, (_i, state) => {
      const sql = state.storage.sql;
      for (const statement of V1) sql.exec(statement);
      sql.exec("INSERT INTO account VALUES (1, ?, 'Old', 'old@example.com', 'https://hooks.example.com/old', 'whsec_x', 1)", accountId);
      sql.exec("INSERT INTO audit (at, type) VALUES (1, 'account_created'), (2, 'agent_created')");
      sql.exec("INSERT INTO active_requests VALUES ('req_1', 'ABCDEFGH', 'agt_1', ?)", later);
      sql.exec("INSERT INTO outbox (id, channel, type, destination, body, created_at, attempts, next_at) VALUES ('evt_1', 'webhook', 'credential.requested', 'https://hooks.example.com/old', '{}', 1, 1, ?)", later);
      sql.exec("INSERT INTO notify_settings VALUES (1, 'slack')");
    });
    await evictDurableObject(stub);

    const found = await stub.get();
    expect(found).toMatchObject({ reason: "found", account: { accountId, name: "Old", webhookUrl: "https://hooks.example.com/old", webhookFormat: "slack" } });
    const audit = await stub.audit();
    expect(audit.reason === "found" && audit.events.map((e) => e.type)).toEqual(["agent_created", "account_created"]);
    const stored = await runInDurableObject(stub, (_i, state) => {
      const sql = state.storage.sql;
      return {
        version: sql.exec<{ version: number }>("SELECT version FROM schema_version").one().version,
        tables: sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name").toArray().map((t) => t.name),
        outbox: sql.exec("SELECT id, attempts, next_at FROM outbox").toArray(),
        slots: sql.exec("SELECT request_id FROM active_requests").toArray(),
      };
    });
    expect(stored.version).toBe(ACCOUNT_SCHEMA_VERSION);
    expect(stored.tables).not.toContain("notify_settings");
    expect(stored.tables).not.toContain("audit_by_time");
    expect(stored.tables).not.toContain("outbox_due");
    expect(stored.tables.filter((name) => name.endsWith("_v1"))).toEqual([]);
    expect(stored.outbox).toEqual([{ id: "evt_1", attempts: 1, next_at: later }]);
    expect(stored.slots).toEqual([{ request_id: "req_1" }]);
  });

  it("writes nothing for an account that does not exist", async () => {
    const stub = env.ACCOUNTS.get(env.ACCOUNTS.idFromName(`acc_${crypto.randomUUID().replace(/-/g, "")}`));
    expect(await stub.get()).toEqual({ reason: "not_found" });
    const tables = await runInDurableObject(stub, (_i, state) => state.storage.sql.exec("SELECT name FROM sqlite_master").toArray());
    expect(tables).toEqual([]);
  });
});
