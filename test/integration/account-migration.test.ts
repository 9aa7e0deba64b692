// An account made before the AccountDO's schema_version row (v1, with or without the console's
// tables) or at version 2 (before operators, push and the console) is brought to the current tables
// when its object loads: rows kept, the webhook format moved onto the account row, the version set.
import { env } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ACCOUNT_SCHEMA_VERSION } from "../../durable-objects/account/account-schema";
import { OPERATOR_SCHEMA } from "../../durable-objects/account/operators";
import { PUSH_SUBSCRIPTION_SCHEMA } from "../../durable-objects/account/push-subscriptions";
import { admin, call, newAgent, requestCredential } from "./support/api";
import { captureEmail, captureOutbound, until } from "./support/outbound";
import { advanceAndRunAlarm } from "./support/outbox";

afterEach(() => vi.restoreAllMocks());

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

/** Version 5's notifications: the `outbox` table, before they rode on their audit rows (`audit.owed`). */
const V5_OUTBOX = [
  "ALTER TABLE audit DROP COLUMN owed",
  "CREATE TABLE outbox (id TEXT PRIMARY KEY, channel TEXT NOT NULL, type TEXT NOT NULL, request_id TEXT, agent_id TEXT, destination TEXT NOT NULL, body TEXT NOT NULL, bearer TEXT, created_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL, last_status INTEGER) WITHOUT ROWID",
];

/** Every notification owed, from the audit rows that carry them. */
const owedEntries = (sql: SqlStorage) =>
  sql
    .exec<{ owed: string }>("SELECT owed FROM audit WHERE owed IS NOT NULL")
    .toArray()
    .flatMap((row) => JSON.parse(row.owed) as { id: string; attempts: number; next_at: number }[]);

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
        outbox: owedEntries(sql).map(({ id, attempts, next_at }) => ({ id, attempts, next_at })),
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

  it("migrates an account made by the console's code before the version row: operators, push and summaries kept", async () => {
    const accountId = `acc_${crypto.randomUUID().replace(/-/g, "")}`;
    const stub = env.ACCOUNTS.get(env.ACCOUNTS.idFromName(accountId));
    const later = Date.now() + 3_600_000;
    const view = { requestId: "req_1", description: "pending", publicKey: null };
    await runInDurableObject(stub, (_i, state) => {
      const sql = state.storage.sql;
      for (const statement of [...V1, "ALTER TABLE active_requests ADD COLUMN console_view TEXT", ...OPERATOR_SCHEMA, PUSH_SUBSCRIPTION_SCHEMA]) sql.exec(statement);
      sql.exec("INSERT INTO account VALUES (1, ?, 'Console', 'owner@example.com', NULL, NULL, 1)", accountId);
      sql.exec("INSERT INTO operators VALUES ('op_1', 'owner@example.com', 'Owner', 'owner', 1)");
      sql.exec("INSERT INTO push_subscriptions VALUES ('sub_1', 'op_1', 'https://push.example.com/1', 'p', 'a', 1)");
      sql.exec("INSERT INTO active_requests VALUES ('req_1', 'ABCDEFGH', 'agt_1', ?, ?)", later, JSON.stringify(view));
    });
    await evictDurableObject(stub);

    expect(await stub.listOperators()).toMatchObject({ reason: "found", operators: [{ operatorId: "op_1", email: "owner@example.com" }] });
    expect(await stub.consoleRequests()).toEqual({ reason: "found", requests: [view] });
    const stored = await runInDurableObject(stub, (_i, state) => ({
      version: state.storage.sql.exec<{ version: number }>("SELECT version FROM schema_version").one().version,
      subscriptions: state.storage.sql.exec("SELECT subscription_id FROM push_subscriptions").toArray(),
    }));
    expect(stored).toEqual({ version: ACCOUNT_SCHEMA_VERSION, subscriptions: [{ subscription_id: "sub_1" }] });
  });

  it("brings a version-2 account (no operators, push, console column or approval policy) to the current tables; issuance then lists it", async () => {
    const { apiKey, accountId } = await newAgent();
    const stub = env.ACCOUNTS.get(env.ACCOUNTS.idFromName(accountId));
    await runInDurableObject(stub, (_i, state) => {
      const sql = state.storage.sql;
      for (const table of ["operators", "passkeys", "invitations", "console_sessions", "used_sign_in_challenges", "push_subscriptions"]) sql.exec(`DROP TABLE ${table}`);
      sql.exec("ALTER TABLE active_requests DROP COLUMN console_view");
      sql.exec("ALTER TABLE account DROP COLUMN approval_policy");
      for (const statement of V5_OUTBOX) sql.exec(statement);
      sql.exec("UPDATE schema_version SET version = 2");
    });
    await evictDurableObject(stub);

    const issued = await requestCredential(apiKey);
    expect(issued.status).toBe(200);
    const listed = await stub.consoleRequests();
    expect(listed.reason === "found" && listed.requests.map((r) => r.description)).toEqual(["Stripe secret key"]);
    expect(await stub.listOperators()).toEqual({ reason: "found", operators: [] });
    expect(await stub.get()).toMatchObject({ reason: "found", account: { approvalPolicy: { approvalsRequired: 1, vaultKeys: null } } });
    const version = await runInDurableObject(stub, (_i, state) => state.storage.sql.exec<{ version: number }>("SELECT version FROM schema_version").one().version);
    expect(version).toBe(ACCOUNT_SCHEMA_VERSION);
  });

  it("brings a version-4 account (a stored notice count, slots keyed by request) to version 5: the open window's held-back notices and the slots kept", async () => {
    const { accountId } = await newAgent();
    const stub = env.ACCOUNTS.get(env.ACCOUNTS.idFromName(accountId));
    const startedAt = Date.now() - 60_000;
    await runInDurableObject(stub, (_i, state) => {
      const sql = state.storage.sql;
      sql.exec("DROP TABLE notice_window");
      sql.exec("CREATE TABLE notice_window (id INTEGER PRIMARY KEY CHECK (id = 1), started_at INTEGER NOT NULL, sent INTEGER NOT NULL, held_back TEXT NOT NULL DEFAULT '{}')");
      sql.exec(`INSERT INTO notice_window VALUES (1, ?, 20, '{"credential.requested":2}')`, startedAt);
      sql.exec("DROP TABLE active_requests");
      sql.exec("CREATE TABLE active_requests (request_id TEXT PRIMARY KEY, user_code TEXT NOT NULL, agent_id TEXT NOT NULL, expires_at INTEGER NOT NULL, console_view TEXT) WITHOUT ROWID");
      sql.exec("INSERT INTO active_requests VALUES ('req_1', 'ABCDEFGH', 'agt_1', ?, ?)", startedAt + 3_600_000, JSON.stringify({ requestId: "req_1" }));
      for (const statement of V5_OUTBOX) sql.exec(statement);
      sql.exec("UPDATE schema_version SET version = 4");
    });
    await evictDurableObject(stub);

    expect(await stub.get()).toMatchObject({ reason: "found" });
    const stored = await runInDurableObject(stub, (_i, state) => ({
      version: state.storage.sql.exec<{ version: number }>("SELECT version FROM schema_version").one().version,
      window: state.storage.sql.exec("SELECT * FROM notice_window").toArray(),
      slots: state.storage.sql.exec("SELECT request_id, user_code, requested_seq FROM active_requests").toArray(),
    }));
    expect(stored).toEqual({
      version: ACCOUNT_SCHEMA_VERSION,
      window: [{ id: 1, started_at: startedAt, start_seq: 0, held_back: '{"credential.requested":2}' }],
      slots: [{ request_id: "req_1", user_code: "ABCDEFGH", requested_seq: 0 }],
    });
    // The slot taken before still counts and still lists (no ending event in the log).
    expect(await stub.consoleRequests()).toEqual({ reason: "found", requests: [{ requestId: "req_1" }] });
  });

  it("brings a version-5 account to 6: a webhook event still owed in `outbox` moves onto an audit row and is sent once, with its id", async () => {
    captureEmail();
    const hooks = captureOutbound(undefined, (url) => url.endsWith("/v5-owed"));
    const { accountId } = await newAgent();
    const patched = await call("PATCH", `/v1/admin/accounts/${accountId}`, { headers: admin, json: { webhook_url: "https://hooks.example.com/v5-owed" } });
    expect(patched.status).toBe(200);
    const stub = env.ACCOUNTS.get(env.ACCOUNTS.idFromName(accountId));
    const now = Date.now();
    // As version 5 left it: the event's first attempt answered 503, its retry due now, the alarm armed for it.
    await runInDurableObject(stub, async (_i, state) => {
      const sql = state.storage.sql;
      for (const statement of V5_OUTBOX) sql.exec(statement);
      sql.exec(
        "INSERT INTO outbox (id, channel, type, request_id, agent_id, destination, body, created_at, attempts, next_at, last_status) VALUES ('evt_v5', 'webhook', 'credential.requested', 'req_v5', 'agt_v5', 'https://hooks.example.com/v5-owed', ?, ?, 1, ?, 503)",
        JSON.stringify({ id: "evt_v5", type: "credential.requested" }),
        now - 10_000,
        now,
      );
      sql.exec("UPDATE schema_version SET version = 5");
      await state.storage.setAlarm(now);
    });
    await evictDurableObject(stub);

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const sent = await until(() => hooks[0], "the moved event");
    expect(sent.headers.get("Keyferry-Event-Id")).toBe("evt_v5");
    expect(JSON.parse(sent.body)).toEqual({ id: "evt_v5", type: "credential.requested" });
    const stored = await runInDurableObject(stub, (_i, state) => ({
      version: state.storage.sql.exec<{ version: number }>("SELECT version FROM schema_version").one().version,
      tables: state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").toArray().map((t) => t.name),
      owed: owedEntries(state.storage.sql).map((entry) => entry.id),
    }));
    expect(stored.version).toBe(ACCOUNT_SCHEMA_VERSION);
    expect(stored.tables).not.toContain("outbox");
    expect(stored.owed).not.toContain("evt_v5");
    // Acknowledged: never sent again, however late the alarm runs.
    await advanceAndRunAlarm(accountId, 3 * 3_600_000);
    expect(hooks).toHaveLength(1);
  });

  it("writes nothing for an account that does not exist", async () => {
    const stub = env.ACCOUNTS.get(env.ACCOUNTS.idFromName(`acc_${crypto.randomUUID().replace(/-/g, "")}`));
    expect(await stub.get()).toEqual({ reason: "not_found" });
    const tables = await runInDurableObject(stub, (_i, state) => state.storage.sql.exec("SELECT name FROM sqlite_master").toArray());
    expect(tables).toEqual([]);
  });
});
