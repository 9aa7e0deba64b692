/** The RequestDO's tables (durable-objects/request/README.md) and how a row becomes the in-memory record. */
import type { RequestStatus } from "../../core/request-state";
import type { RequestDetails, RequestRecord } from "./request-types";
import { DECISION_CHALLENGE_SCHEMA } from "./decision-authority";

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
    payload TEXT
  )`,
  "CREATE TABLE dpop_jti (jti TEXT PRIMARY KEY)",
  DECISION_CHALLENGE_SCHEMA,
];

/** Brings a table made before the return channel, DPoP and the replay alarm to this shape. */
export const MIGRATE_TO_V1_1 = ["ALTER TABLE request ADD COLUMN replay_reported INTEGER NOT NULL DEFAULT 0", SCHEMA[1]!];

export type Row = {
  handle_tag: string;
  status: string;
  expires_at: number;
  interval: number;
  failed_attempts: number;
  claim_hash: string | null;
  replay_reported?: number;
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
    details: JSON.parse(row.details) as RequestDetails,
    handleTag: row.handle_tag,
  };
}
