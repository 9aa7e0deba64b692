/** The RequestDO's tables (durable-objects/request/README.md) and how a row becomes the in-memory record. */
import type { RequestStatus } from "../../core/request-state";
import type { RequestDetails, RequestRecord } from "./request-types";

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
    grace_ends_at INTEGER
  )`,
  "CREATE TABLE dpop_jti (jti TEXT PRIMARY KEY)",
];

/** Brings a table made before the return channel, DPoP and the replay alarm to this shape. */
export const MIGRATE_TO_V1_1 = ["ALTER TABLE request ADD COLUMN replay_reported INTEGER NOT NULL DEFAULT 0", SCHEMA[1]!];

/** Brings a v1.1 table to this shape: the grace window of a bound delivery (README, "Nothing lost to a dropped response"). */
export const MIGRATE_TO_V1_2 = ["ALTER TABLE request ADD COLUMN grace_ends_at INTEGER"];

export type Row = {
  handle_tag: string;
  status: string;
  expires_at: number;
  interval: number;
  failed_attempts: number;
  claim_hash: string | null;
  replay_reported?: number;
  grace_ends_at?: number | null;
  details: string;
};

export function recordOf(row: Row): RequestRecord {
  return {
    status: row.status as RequestStatus,
    expiresAt: row.expires_at,
    interval: row.interval,
    failedAttempts: row.failed_attempts,
    claimHash: row.claim_hash,
    // Absent in rows written before the replay alarm existed.
    replayReported: row.replay_reported === 1,
    graceEndsAt: row.grace_ends_at ?? null,
    details: JSON.parse(row.details) as RequestDetails,
    handleTag: row.handle_tag,
  };
}
