/**
 * The RequestDO's stored request (durable-objects/request/README.md): one value under `request` in
 * the object's synchronous key-value storage, how it becomes the in-memory record, and how a
 * transition's state is written back. A key, not a table: a new request writes its value (1 row)
 * and no `CREATE TABLE` (2 rows; bench/README.md, "Cost per handoff").
 */
import type { RequestState, Tombstone } from "../../core/request-state";
import type { KeptAnswer, LiveRecord, RequestDetails, RequestRecord } from "./request-types";

export const REQUEST_KEY = "request";

/** The stored request, in the columns of the table it replaced (a request made before the upgrade is read from there). */
export type Row = {
  handle_tag: string;
  status: string;
  expires_at: number;
  interval: number;
  failed_attempts: number;
  claim_hash: string | null;
  replay_reported: number;
  grace_ends_at: number | null;
  /** JSON `RequestDetails` (a delivered request: its `Tombstone`). */
  details: string;
  /** The credential as a JWE to the request's encryption key, from the approval to the delivery. */
  payload: string | null;
  /** JSON `KeptAnswer`, through a bound delivery's grace window only. */
  kept: string | null;
};

export function recordOf(row: Row): RequestRecord {
  const state = {
    expiresAt: row.expires_at,
    interval: row.interval,
    failedAttempts: row.failed_attempts,
    claimHash: row.claim_hash,
    replayReported: row.replay_reported === 1,
    graceEndsAt: row.grace_ends_at,
    handleTag: row.handle_tag,
  };
  if (row.status === "delivered") {
    const kept = row.kept ? (JSON.parse(row.kept) as KeptAnswer) : null;
    return { ...state, status: "delivered", details: JSON.parse(row.details) as Tombstone, kept };
  }
  return { ...state, status: row.status as LiveRecord["status"], details: JSON.parse(row.details) as RequestDetails };
}

export const readRow = (kv: SyncKvStorage): Row | undefined => kv.get<Row>(REQUEST_KEY);

/** Rewrites the stored request with `patch` applied: one row written. Call it inside the step that decided the change. */
export function patchRow(kv: SyncKvStorage, patch: Partial<Row>): void {
  const row = readRow(kv);
  if (!row) throw new Error("the request object holds no request to update");
  kv.put<Row>(REQUEST_KEY, { ...row, ...patch });
}

/**
 * The object's request, or null when it holds none (never made, or erased by the alarm). A request
 * made before the key-value layout (alive for at most one TTL) is still in the `request` table,
 * without the grace window's two columns if it predates v1.2: it moves to its key, in one step.
 */
export function loadRecord(storage: DurableObjectStorage): RequestRecord | null {
  const row = readRow(storage.kv) ?? adoptTableRow(storage);
  return row ? recordOf(row) : null;
}

/** The `request` table's row as a v1.1 object stored it (no grace window) or a v1.2 one. */
type TableRow = Omit<Row, "grace_ends_at" | "kept"> & { id: number; grace_ends_at?: number | null; kept?: string | null };

function adoptTableRow(storage: DurableObjectStorage): Row | undefined {
  const { sql } = storage;
  if (sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'request'").toArray().length === 0) return undefined;
  return storage.transactionSync(() => {
    const stored = sql.exec<TableRow>("SELECT * FROM request").toArray()[0];
    sql.exec("DROP TABLE request");
    if (!stored) return undefined;
    const { id: _id, grace_ends_at = null, kept = null, ...columns } = stored;
    const row: Row = { ...columns, grace_ends_at, kept };
    storage.kv.put<Row>(REQUEST_KEY, row);
    return row;
  });
}

/**
 * Stores what a transition changed (nothing, for most polls: `next` is then `record` itself) and
 * mirrors it in memory; an approval's payload (or its erasure: null) and new details in the same row
 * write as its state.
 */
export function storeState(kv: SyncKvStorage, record: RequestRecord, next: RequestState, extra: { payload?: string | null; details?: RequestDetails } = {}): void {
  if (next === record) return;
  patchRow(kv, {
    status: next.status,
    interval: next.interval,
    failed_attempts: next.failedAttempts,
    claim_hash: next.claimHash,
    replay_reported: next.replayReported ? 1 : 0,
    grace_ends_at: next.graceEndsAt,
    ...(extra.payload !== undefined ? { payload: extra.payload } : {}),
    ...(extra.details ? { details: JSON.stringify(extra.details) } : {}),
  });
  Object.assign(record, next, extra.details ? { details: extra.details } : {});
}
