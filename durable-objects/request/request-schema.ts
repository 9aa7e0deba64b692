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
  DECISION_CHALLENGE_SCHEMA,
];

export type Row = {
  handle_tag: string;
  status: string;
  expires_at: number;
  interval: number;
  failed_attempts: number;
  claim_hash: string | null;
  replay_reported: number;
  details: string;
};

export function recordOf(row: Row): RequestRecord {
  return {
    status: row.status as RequestStatus,
    expiresAt: row.expires_at,
    interval: row.interval,
    failedAttempts: row.failed_attempts,
    claimHash: row.claim_hash,
    replayReported: row.replay_reported === 1,
    details: JSON.parse(row.details) as RequestDetails,
    handleTag: row.handle_tag,
  };
}
