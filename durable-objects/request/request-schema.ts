/** The RequestDO's tables (durable-objects/request/README.md), how a row becomes the in-memory record, and how a transition's state is written back. */
import type { RequestState, Tombstone } from "../../core/request-state";
import type { KeptAnswer, LiveRecord, RequestDetails, RequestRecord } from "./request-types";

export const SCHEMA = [
  `CREATE TABLE request (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    handle_tag TEXT NOT NULL,
    status TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    interval INTEGER NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    claim_hash TEXT,
    replay_reported INTEGER NOT NULL DEFAULT 0,
    details TEXT NOT NULL,
    payload TEXT,
    grace_ends_at INTEGER,
    kept TEXT
  )`,
];

/**
 * Brings a v1.1 table (a request made before the upgrade, alive for at most one TTL) to this shape:
 * a bound delivery's grace window (README, "Nothing lost to a dropped response").
 */
export const MIGRATE_TO_V1_2 = ["ALTER TABLE request ADD COLUMN grace_ends_at INTEGER", "ALTER TABLE request ADD COLUMN kept TEXT"];

export type Row = {
  handle_tag: string;
  status: string;
  expires_at: number;
  interval: number;
  failed_attempts: number;
  claim_hash: string | null;
  replay_reported: number;
  /** Absent in a v1.1 row until MIGRATE_TO_V1_2 ran. */
  grace_ends_at?: number | null;
  details: string;
  /** JSON `KeptAnswer`, through a bound delivery's grace window only. */
  kept?: string | null;
};

export function recordOf(row: Row): RequestRecord {
  const state = {
    expiresAt: row.expires_at,
    interval: row.interval,
    failedAttempts: row.failed_attempts,
    claimHash: row.claim_hash,
    replayReported: row.replay_reported === 1,
    graceEndsAt: row.grace_ends_at ?? null,
    handleTag: row.handle_tag,
  };
  if (row.status === "delivered") {
    const kept = row.kept ? (JSON.parse(row.kept) as KeptAnswer) : null;
    return { ...state, status: "delivered", details: JSON.parse(row.details) as Tombstone, kept };
  }
  return { ...state, status: row.status as LiveRecord["status"], details: JSON.parse(row.details) as RequestDetails };
}

/** The object's request, or null when it holds none (never made, or erased by the alarm). */
export function loadRecord(sql: SqlStorage): RequestRecord | null {
  const hasTable = sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'request'").toArray().length > 0;
  let row = hasTable ? sql.exec<Row>("SELECT * FROM request").toArray()[0] : undefined;
  // A request made before the grace window lives on (at most one TTL) without its two columns.
  if (row && !("grace_ends_at" in row)) {
    for (const statement of MIGRATE_TO_V1_2) sql.exec(statement);
    row = { ...row, grace_ends_at: null, kept: null };
  }
  return row ? recordOf(row) : null;
}

/**
 * Stores what a transition changed (nothing, for most polls: `next` is then `record` itself) and
 * mirrors it in memory; an approval's payload (or new details) in the same row write as its state.
 */
export function storeState(sql: SqlStorage, record: RequestRecord, next: RequestState, extra: { payload?: string | null; details?: RequestDetails } = {}): void {
  if (next === record) return;
  sql.exec(
    "UPDATE request SET status = ?, interval = ?, failed_attempts = ?, claim_hash = ?, replay_reported = ?, grace_ends_at = ?, payload = COALESCE(?, payload), details = COALESCE(?, details)",
    next.status,
    next.interval,
    next.failedAttempts,
    next.claimHash,
    next.replayReported ? 1 : 0,
    next.graceEndsAt,
    extra.payload ?? null,
    extra.details ? JSON.stringify(extra.details) : null,
  );
  Object.assign(record, next, extra.details ? { details: extra.details } : {});
}
