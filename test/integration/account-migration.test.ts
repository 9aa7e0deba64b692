// An account made before the AccountDO's schema_version row (v1, with or without the console's
// tables) or at a later version (2: before operators, push and the console; 4: slots keyed by request;
// 5: slots in their own table, not on their `requested` rows) is brought to the current tables
// when its object loads: rows kept, the webhook format moved onto the account row, the version set.
import { env } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ACCOUNT_SCHEMA_VERSION } from "../../durable-objects/account/account-schema";
import { OPERATOR_SCHEMA } from "../../durable-objects/account/operators";
import { PUSH_SUBSCRIPTION_SCHEMA } from "../../durable-objects/account/push-subscriptions";
import type { DecideAnswerBody } from "../../core/wire";
import { admin, call, lookupAs, newAgent, normalized, requestCredential, type Answer } from "./support/api";
import { setPolicy } from "./support/approval-policy";
import { captureEmail, captureOutbound, until } from "./support/outbound";
import { advanceAndRunAlarm } from "./support/outbox";

afterEach(() => vi.restoreAllMocks());

/** The operator denies the request from the approval page. */
async function deny(userCode: string, operatorEmail: string) {
  const looked = await lookupAs(userCode, operatorEmail);
  const denied = await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", { headers: { Cookie: looked.cookie! }, json: { approval_token: looked.body.approval_token, decision: "deny" } });
  expect(denied.status).toBe(200);
}

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

/**
 * `audit` and the notifications as versions 2 to 5 kept them: `audit` without the slot's columns
 * (version 6 keeps a slot on its `requested` row) nor `owed` (version 6 keeps an event's
 * notifications on its row), and the `outbox` table.
 */
function toV5Audit(sql: SqlStorage) {
  for (const column of ["user_code", "expires_at", "console_view", "owed"]) sql.exec(`ALTER TABLE audit DROP COLUMN ${column}`);
  sql.exec(
    "CREATE TABLE outbox (id TEXT PRIMARY KEY, channel TEXT NOT NULL, type TEXT NOT NULL, request_id TEXT, agent_id TEXT, destination TEXT NOT NULL, body TEXT NOT NULL, bearer TEXT, created_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL, last_status INTEGER) WITHOUT ROWID",
  );
}

/** Version 5's table of slots. */
const V5_SLOTS = "CREATE TABLE active_requests (slot INTEGER PRIMARY KEY, request_id TEXT NOT NULL, user_code TEXT NOT NULL, agent_id TEXT NOT NULL, expires_at INTEGER NOT NULL, console_view TEXT, requested_seq INTEGER NOT NULL DEFAULT 0)";

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
    // The live slot, carried onto a `requested` row written at the upgrade (the log held none for it).
    expect(audit.reason === "found" && audit.events.map((e) => e.type)).toEqual(["requested", "agent_created", "account_created"]);
    const stored = await runInDurableObject(stub, (_i, state) => {
      const sql = state.storage.sql;
      return {
        version: sql.exec<{ version: number }>("SELECT version FROM schema_version").one().version,
        tables: sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name").toArray().map((t) => t.name),
        outbox: owedEntries(sql).map(({ id, attempts, next_at }) => ({ id, attempts, next_at })),
        slots: sql.exec("SELECT request_id, user_code, expires_at FROM audit WHERE type = 'requested'").toArray(),
      };
    });
    expect(stored.version).toBe(ACCOUNT_SCHEMA_VERSION);
    expect(stored.tables).not.toContain("notify_settings");
    expect(stored.tables).not.toContain("audit_by_time");
    expect(stored.tables).not.toContain("outbox_due");
    expect(stored.tables.filter((name) => name.endsWith("_v1"))).toEqual([]);
    expect(stored.outbox).toEqual([{ id: "evt_1", attempts: 1, next_at: later }]);
    expect(stored.tables).not.toContain("active_requests");
    expect(stored.slots).toEqual([{ request_id: "req_1", user_code: "ABCDEFGH", expires_at: later }]);
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
      toV5Audit(sql);
      sql.exec("CREATE TABLE active_requests (request_id TEXT PRIMARY KEY, user_code TEXT NOT NULL, agent_id TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID");
      sql.exec("ALTER TABLE account DROP COLUMN approval_policy");
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

  it("brings a version-4 account (a stored notice count, slots keyed by request) to the current version: the open window's held-back notices and the slots kept", async () => {
    const { accountId } = await newAgent();
    const stub = env.ACCOUNTS.get(env.ACCOUNTS.idFromName(accountId));
    const startedAt = Date.now() - 60_000;
    await runInDurableObject(stub, (_i, state) => {
      const sql = state.storage.sql;
      sql.exec("DROP TABLE notice_window");
      sql.exec("CREATE TABLE notice_window (id INTEGER PRIMARY KEY CHECK (id = 1), started_at INTEGER NOT NULL, sent INTEGER NOT NULL, held_back TEXT NOT NULL DEFAULT '{}')");
      sql.exec(`INSERT INTO notice_window VALUES (1, ?, 20, '{"credential.requested":2}')`, startedAt);
      toV5Audit(sql);
      sql.exec("CREATE TABLE active_requests (request_id TEXT PRIMARY KEY, user_code TEXT NOT NULL, agent_id TEXT NOT NULL, expires_at INTEGER NOT NULL, console_view TEXT) WITHOUT ROWID");
      sql.exec("INSERT INTO active_requests VALUES ('req_1', 'ABCDEFGH', 'agt_1', ?, ?)", startedAt + 3_600_000, JSON.stringify({ requestId: "req_1" }));
      sql.exec("UPDATE schema_version SET version = 4");
    });
    await evictDurableObject(stub);

    expect(await stub.get()).toMatchObject({ reason: "found" });
    const stored = await runInDurableObject(stub, (_i, state) => ({
      version: state.storage.sql.exec<{ version: number }>("SELECT version FROM schema_version").one().version,
      window: state.storage.sql.exec("SELECT * FROM notice_window").toArray(),
      slots: state.storage.sql.exec("SELECT request_id, user_code, expires_at FROM audit WHERE type = 'requested'").toArray(),
    }));
    expect(stored).toEqual({
      version: ACCOUNT_SCHEMA_VERSION,
      window: [{ id: 1, started_at: startedAt, start_seq: 0, held_back: '{"credential.requested":2}' }],
      slots: [{ request_id: "req_1", user_code: "ABCDEFGH", expires_at: startedAt + 3_600_000 }],
    });
    // The slot taken before still counts and still lists (no ending event in the log).
    expect(await stub.consoleRequests()).toEqual({ reason: "found", requests: [{ requestId: "req_1" }] });
  });

  it("brings a version-5 account (a table of slots) to version 6: each live slot onto its `requested` row, with the cap, its Retry-After and the console's summaries (N-of-M approvals so far)", async () => {
    const { accountId, apiKey, operatorEmail } = await newAgent();
    const stub = env.ACCOUNTS.get(env.ACCOUNTS.idFromName(accountId));
    // Five requests: the first denied (its slot ended), the other four needing two approvals.
    const first = (await requestCredential(apiKey, { vault_key: "denied" })).body;
    await deny(first.user_code, operatorEmail);
    expect((await setPolicy(accountId, { approvals_required: 2 })).status).toBe(200);
    const pending = [];
    for (let i = 0; i < 4; i++) pending.push((await requestCredential(apiKey, { vault_key: `key-${i}` })).body);
    const approvers = [{ operatorId: "opr_first", email: "first@example.com" }];
    // The same account as version 5 kept it: the slots in their own table, `audit` without their columns.
    await runInDurableObject(stub, (_i, state) => {
      const sql = state.storage.sql;
      sql.exec(V5_SLOTS);
      sql.exec("INSERT INTO active_requests (request_id, user_code, agent_id, expires_at, console_view, requested_seq) SELECT request_id, user_code, agent_id, expires_at, console_view, seq FROM audit WHERE type = 'requested'");
      // A first approval of key-0, as version 5 wrote it into that slot's summary.
      sql.exec(
        "UPDATE active_requests SET console_view = json_set(console_view, '$.approvals.payloadSha256', 'digest-0', '$.approvals.approvers', json(?)) WHERE json_extract(console_view, '$.vaultKey') = 'key-0'",
        JSON.stringify(approvers),
      );
      toV5Audit(sql);
      sql.exec("UPDATE schema_version SET version = 5");
    });
    await evictDurableObject(stub);

    const listed = await stub.consoleRequests();
    expect(listed.reason === "found" && listed.requests.map((r) => [r.vaultKey, r.approvals])).toEqual([
      ["key-0", { required: 2, payloadSha256: "digest-0", approvers }],
      ["key-1", { required: 2, payloadSha256: null, approvers: [] }],
      ["key-2", { required: 2, payloadSha256: null, approvers: [] }],
      ["key-3", { required: 2, payloadSha256: null, approvers: [] }],
    ]);
    const stored = await runInDurableObject(stub, (_i, state) => ({
      version: state.storage.sql.exec<{ version: number }>("SELECT version FROM schema_version").one().version,
      tables: state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").toArray().map((t) => t.name),
      slots: state.storage.sql.exec<{ user_code: string | null }>("SELECT user_code FROM audit WHERE type = 'requested' ORDER BY seq").toArray().map((row) => row.user_code),
    }));
    expect(stored.version).toBe(6);
    expect(stored.tables).not.toContain("active_requests");
    // The ended slot was not carried; the four live ones are on their own `requested` rows.
    expect(stored.slots).toEqual([null, ...pending.map((p) => normalized(p.user_code))]);
    // The cap counts the carried slots: one more fits, the next waits for the soonest expiry.
    expect((await requestCredential(apiKey)).status).toBe(200);
    const refused = await requestCredential(apiKey);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThan(500);
    expect(Number(refused.headers.get("Retry-After"))).toBeLessThanOrEqual(600);
    // A carried slot still ends by the log: its denial frees it.
    await deny(pending[1]!.user_code, operatorEmail);
    expect((await requestCredential(apiKey)).status).toBe(200);
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
      toV5Audit(sql);
      sql.exec(V5_SLOTS);
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
