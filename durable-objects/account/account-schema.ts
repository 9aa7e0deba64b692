/**
 * The AccountDO's tables (durable-objects/account/README.md documents them), made idempotently by the first
 * write: the constructor only reads, so an object reached for an account that does not exist keeps
 * no storage.
 */
import { NOTIFY_SCHEMA } from "./notify/notifier";
import { OPERATOR_SCHEMA } from "./operators";
import { PUSH_SUBSCRIPTION_SCHEMA } from "./push-subscriptions";

export const ACCOUNT_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS account (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    operator_email TEXT NOT NULL,
    webhook_url TEXT,
    webhook_secret TEXT,
    created_at INTEGER NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS agents (
    agent_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT,
    key_hash TEXT NOT NULL,
    ping_endpoint TEXT,
    created_at INTEGER NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS active_requests (
    request_id TEXT PRIMARY KEY,
    user_code TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    console_view TEXT
  )`,
  `CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    type TEXT NOT NULL,
    request_id TEXT,
    agent_id TEXT,
    actor TEXT,
    detail TEXT
  )`,
  "CREATE INDEX IF NOT EXISTS audit_by_time ON audit (at)",
  ...NOTIFY_SCHEMA,
  ...OPERATOR_SCHEMA,
  PUSH_SUBSCRIPTION_SCHEMA,
  // Repeated refusals and failed attempts, counted in one row per key and window (./audit-log.ts).
  "CREATE TABLE IF NOT EXISTS audit_noise (seq INTEGER PRIMARY KEY, noise_key TEXT NOT NULL, window_end INTEGER NOT NULL)",
  "CREATE INDEX IF NOT EXISTS audit_noise_by_key ON audit_noise (noise_key, window_end)",
  // A deleted agent's requests still to be revoked (user_code '' stands for its vault's purge): a
  // delete that failed half-way is finished by its retry.
  "CREATE TABLE IF NOT EXISTS pending_revocations (agent_id TEXT NOT NULL, user_code TEXT NOT NULL, PRIMARY KEY (agent_id, user_code))",
];
