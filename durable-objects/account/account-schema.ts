/**
 * The AccountDO's tables (durable-objects/account/README.md documents them) and their version.
 * A new account's tables are made by its first write: the constructor only reads, so an object
 * reached for an account that does not exist keeps no storage. An account made by an earlier
 * version is brought up to date when its object starts (`migrateAccount`), once, in one transaction.
 *
 * Shaped for what a handoff costs (bench/README.md, "Cost per handoff"): every index entry is a
 * row written, so the hot tables have none beyond their key (`WITHOUT ROWID` keeps a text key in
 * the table itself), and the audit log appends by rowid (no AUTOINCREMENT, whose counter is one
 * more row per event).
 */
import { NOTICE_CAP_SCHEMA } from "./notify/notice-cap";
import { AUDIT_OWED_COLUMN } from "./notify/owed";
import { OPERATOR_SCHEMA } from "./operators";
import { PUSH_SUBSCRIPTION_SCHEMA } from "./push-subscriptions";

export const ACCOUNT_SCHEMA_VERSION = 6;

/**
 * A `requested` audit row is its request's slot (./live-slots.ts): the user code that addresses its
 * object, its expiry, and the console's summary (`console_view`, JSON: agent, description, vault key,
 * expiry, binding message, the public keys it is encrypted to, N-of-M approvals so far:
 * ./console-feed.ts). NULL on every other event.
 */
const AUDIT_SLOT_COLUMNS = ["user_code TEXT", "expires_at INTEGER", "console_view TEXT"];

export const ACCOUNT_SCHEMA = [
  "CREATE TABLE schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
  `CREATE TABLE account (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    operator_email TEXT NOT NULL,
    webhook_url TEXT,
    webhook_secret TEXT,
    webhook_format TEXT NOT NULL DEFAULT 'keyferry',
    created_at INTEGER NOT NULL,
    approval_policy TEXT
  )`,
  `CREATE TABLE agents (
    agent_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT,
    key_hash TEXT NOT NULL,
    ping_endpoint TEXT,
    created_at INTEGER NOT NULL
  )`,
  // `seq` is the rowid: the newest row is never the one evicted, so a number is never reused.
  // `owed`: the notifications the event still owes (./notify/owed.ts), written with it.
  `CREATE TABLE audit (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, type TEXT NOT NULL, request_id TEXT, agent_id TEXT, actor TEXT, detail TEXT, ${AUDIT_SLOT_COLUMNS.join(", ")}, ${AUDIT_OWED_COLUMN})`,
  // Repeated refusals and failed attempts, counted in one row per key and window (./audit-log.ts).
  "CREATE TABLE audit_noise (seq INTEGER PRIMARY KEY, noise_key TEXT NOT NULL, window_end INTEGER NOT NULL)",
  "CREATE INDEX audit_noise_by_key ON audit_noise (noise_key, window_end)",
  // A deleted agent's requests still to be revoked (user_code '' stands for its vault's purge): a
  // delete that failed half-way is finished by its retry.
  "CREATE TABLE pending_revocations (agent_id TEXT NOT NULL, user_code TEXT NOT NULL, PRIMARY KEY (agent_id, user_code))",
  ...NOTICE_CAP_SCHEMA,
  ...OPERATOR_SCHEMA,
  PUSH_SUBSCRIPTION_SCHEMA,
  `INSERT INTO schema_version (id, version) VALUES (1, ${ACCOUNT_SCHEMA_VERSION})`,
];

/**
 * `active_requests`, `audit` and `outbox` as versions 2 to 5 made them: the steps up to 5 rebuild
 * into these, and 5 to 6 then moves the slots and the owed notifications onto the log.
 */
const V5_SHAPES: Record<string, string> = {
  active_requests:
    "CREATE TABLE active_requests (slot INTEGER PRIMARY KEY, request_id TEXT NOT NULL, user_code TEXT NOT NULL, agent_id TEXT NOT NULL, expires_at INTEGER NOT NULL, console_view TEXT, requested_seq INTEGER NOT NULL DEFAULT 0)",
  audit: "CREATE TABLE audit (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, type TEXT NOT NULL, request_id TEXT, agent_id TEXT, actor TEXT, detail TEXT)",
  outbox: `CREATE TABLE outbox (
    id TEXT PRIMARY KEY, channel TEXT NOT NULL, type TEXT NOT NULL, request_id TEXT, agent_id TEXT, destination TEXT NOT NULL, body TEXT NOT NULL,
    bearer TEXT, created_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL, last_status INTEGER
  ) WITHOUT ROWID`,
};

/**
 * Version 1 (no `schema_version` row: made before it, with or without the console's tables) to 2:
 * the tables above, rows kept; a table v1 lacked is made. A pending request's console summary is
 * kept (the column is added first where the account had none).
 */
const FROM_V1 = [
  "CREATE TABLE schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
  "CREATE TABLE IF NOT EXISTS notify_settings (id INTEGER PRIMARY KEY CHECK (id = 1), webhook_format TEXT NOT NULL)",
  "ALTER TABLE account ADD COLUMN webhook_format TEXT NOT NULL DEFAULT 'keyferry'",
  "UPDATE account SET webhook_format = COALESCE((SELECT webhook_format FROM notify_settings), 'keyferry')",
  "DROP TABLE notify_settings",
  ...rebuild("active_requests", "request_id, user_code, agent_id, expires_at, console_view"),
  ...rebuild("audit", "seq, at, type, request_id, agent_id, actor, detail"),
  ...rebuild("outbox", "id, channel, type, request_id, agent_id, destination, body, bearer, created_at, attempts, next_at, last_status"),
  "DROP TABLE IF EXISTS notice_window",
  "CREATE TABLE IF NOT EXISTS audit_noise (seq INTEGER PRIMARY KEY, noise_key TEXT NOT NULL, window_end INTEGER NOT NULL)",
  "CREATE INDEX IF NOT EXISTS audit_noise_by_key ON audit_noise (noise_key, window_end)",
  "CREATE TABLE IF NOT EXISTS pending_revocations (agent_id TEXT NOT NULL, user_code TEXT NOT NULL, PRIMARY KEY (agent_id, user_code))",
  ...ACCOUNT_SCHEMA.filter((statement) => /^CREATE TABLE notice_window/.test(statement.trimStart())),
  `INSERT INTO schema_version (id, version) VALUES (1, 2)`,
];

/**
 * Version 2 to 3: operators, passkeys, invitations, console sessions (./operators.ts), push
 * subscriptions (./push-subscriptions.ts) and the console summary's column, none of which an
 * account made at version 2 has.
 */
const FROM_V2 = [...OPERATOR_SCHEMA, PUSH_SUBSCRIPTION_SCHEMA, "UPDATE schema_version SET version = 3"];

/** Version 3 to 4: the account's approval policy (./approval-policy-row.ts; NULL: one approval). */
const FROM_V3 = ["ALTER TABLE account ADD COLUMN approval_policy TEXT", "UPDATE schema_version SET version = 4"];

/**
 * Version 4 to 5: the notice window counts what it sent from the audit log (notify/notice-cap.ts),
 * so its row loses `sent` and gains `start_seq` (0: counted by time over the whole log); an open
 * window and what it held back are kept. A slot's end is read from the log too (./active-slots.ts):
 * `active_requests` is keyed by a slot number and gains `requested_seq` (0 for a slot taken before:
 * its request's events are looked for over the whole log); its rows are kept.
 */
const FROM_V4 = [
  ...rebuild("notice_window", "id, started_at, held_back"),
  ...rebuild("active_requests", "request_id, user_code, agent_id, expires_at, console_view"),
  "UPDATE schema_version SET version = 5",
];

/** The current time in Unix ms, as the log's `at` holds it. */
const NOW_MS = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";
/** An active slot of version 5: unexpired, and no ending event since its `requested` row (0: the whole log). */
const V5_SLOT_LIVE = `expires_at > ${NOW_MS} AND NOT EXISTS (SELECT 1 FROM audit WHERE audit.seq > active_requests.requested_seq AND audit.request_id = active_requests.request_id AND audit.type IN ('denied', 'locked', 'expired', 'delivered'))`;

/**
 * Version 5 to 6, the slot onto the log (./live-slots.ts): `audit` gains the slot's columns, each
 * live slot of `active_requests` is carried onto its request's newest `requested` row (or onto a
 * `requested` row written now, where the log no longer held it: evicted, or taken before the log
 * kept slots), and the table goes. Ended and expired slots are not carried.
 */
const SLOT_ON_REQUESTED_ROW = [
  ...AUDIT_SLOT_COLUMNS.map((column) => `ALTER TABLE audit ADD COLUMN ${column}`),
  `DELETE FROM active_requests WHERE NOT (${V5_SLOT_LIVE})`,
  `UPDATE audit SET user_code = slot.user_code, expires_at = slot.expires_at, console_view = slot.console_view FROM active_requests AS slot
    WHERE audit.seq = (SELECT MAX(requested.seq) FROM audit AS requested WHERE requested.type = 'requested' AND requested.request_id = slot.request_id)`,
  `INSERT INTO audit (at, type, request_id, agent_id, user_code, expires_at, console_view)
    SELECT ${NOW_MS}, 'requested', request_id, agent_id, user_code, expires_at, console_view FROM active_requests AS slot
    WHERE NOT EXISTS (SELECT 1 FROM audit WHERE audit.type = 'requested' AND audit.request_id = slot.request_id) ORDER BY expires_at`,
  "DROP TABLE active_requests",
];

/**
 * Version 5 to 6 (issue 21, notifications owed on their audit row): `audit` gains `owed`
 * (./notify/owed.ts); the rows left in `outbox` move onto audit rows of their own, one per request
 * (`notifications_moved`, dated now so that the alarm's read of the log finds them; each entry
 * keeps its id, attempts, schedule and creation time), and `outbox` goes. Moved rather than
 * drained: one statement now instead of a second code path kept for a table that is empty within
 * the hour of retries.
 */
export const FROM_V5_OWED = [
  `ALTER TABLE audit ADD COLUMN ${AUDIT_OWED_COLUMN}`,
  `INSERT INTO audit (at, type, request_id, agent_id, owed)
   SELECT CAST(strftime('%s', 'now') AS INTEGER) * 1000, 'notifications_moved', request_id, agent_id,
     json_group_array(json_object('id', id, 'channel', channel, 'type', type, 'destination', destination, 'body', body, 'bearer', bearer,
       'created_at', created_at, 'attempts', attempts, 'next_at', next_at, 'last_status', last_status))
   FROM outbox GROUP BY request_id, agent_id`,
  "DROP TABLE outbox",
];

const FROM_V5 = [...SLOT_ON_REQUESTED_ROW, ...FROM_V5_OWED, "UPDATE schema_version SET version = 6"];

/** A v1 table renamed, made again in its new shape, its rows copied over (a missing one starts empty). */
function rebuild(table: string, columns: string): string[] {
  const create = V5_SHAPES[table] ?? ACCOUNT_SCHEMA.find((statement) => statement.trimStart().startsWith(`CREATE TABLE ${table} `))!;
  return [
    `CREATE TABLE IF NOT EXISTS ${table} (${columns})`,
    `ALTER TABLE ${table} RENAME TO ${table}_v1`,
    create,
    `INSERT INTO ${table} (${columns}) SELECT ${columns} FROM ${table}_v1`,
    `DROP TABLE ${table}_v1`,
  ];
}

/** `MIGRATIONS[v]` brings version v to v + 1. */
const MIGRATIONS: Record<number, string[]> = { 1: FROM_V1, 2: FROM_V2, 3: FROM_V3, 4: FROM_V4, 5: FROM_V5 };

/** 0: no account here (no storage); 1: made before the version row; otherwise the stored version. */
export function accountSchemaVersion(sql: SqlStorage): number {
  const tables = new Set(sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").toArray().map((t) => t.name));
  if (tables.has("schema_version")) return sql.exec<{ version: number }>("SELECT version FROM schema_version").one().version;
  return tables.has("account") ? 1 : 0;
}

/** The console summary's column, where a version 1 or 2 account's `active_requests` lacks it (`ALTER TABLE` has no `IF NOT EXISTS`). */
function addConsoleColumn(sql: SqlStorage): void {
  const has = sql.exec("SELECT 1 FROM pragma_table_info('active_requests') WHERE name = 'console_view'").toArray().length > 0;
  if (!has) sql.exec("ALTER TABLE active_requests ADD COLUMN console_view TEXT");
}

/** Brings an existing account's tables to ACCOUNT_SCHEMA_VERSION. Call inside a transaction. */
export function migrateAccount(sql: SqlStorage, from: number): void {
  // `ALTER TABLE … ADD COLUMN` has no `IF NOT EXISTS`: the column is added here where it is missing,
  // so a version-1 account's summaries are copied by its rebuild and version 2 gains the column.
  addConsoleColumn(sql);
  for (let version = from; version < ACCOUNT_SCHEMA_VERSION; version++) {
    for (const statement of MIGRATIONS[version]!) sql.exec(statement);
  }
}
