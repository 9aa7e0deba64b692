/** A request object's stored request (durable-objects/request/request-schema.ts), read and changed as a test needs it. */
import { REQUEST_KEY, patchRow, readRow, type Row } from "../../../durable-objects/request/request-schema";

type Storage = { storage: DurableObjectStorage };

/** The stored request; throws if the object holds none. */
export function storedRow(state: Storage): Row {
  const row = readRow(state.storage.kv);
  if (!row) throw new Error("the request object holds no request");
  return row;
}

/** Changes the stored request only (the instance's in-memory mirror keeps what it had: evict it to reload). */
export function patchRequestRow(state: Storage, patch: Partial<Row>): void {
  patchRow(state.storage.kv, patch);
}

/** The keys of the object's key-value storage (the request's, when it holds one). */
export const storedKeys = (state: Storage) => [...state.storage.kv.list()].map(([key]) => key);

/** The `request` table as objects made before the key-value layout stored their request (v1.2; v1.1 had no grace window columns). */
const TABLE_BEFORE_KV = `CREATE TABLE request (
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
)`;

/** Moves the stored request back into the table a release before the key-value layout kept it in, as an object made then holds it. */
export function toTableLayout(state: Storage, release: "v1.1" | "v1.2"): void {
  const { sql, kv } = state.storage;
  state.storage.transactionSync(() => {
    const { grace_ends_at, kept, ...v11 } = storedRow(state);
    const row = release === "v1.1" ? v11 : { ...v11, grace_ends_at, kept };
    sql.exec(TABLE_BEFORE_KV);
    if (release === "v1.1") for (const column of ["grace_ends_at", "kept"]) sql.exec(`ALTER TABLE request DROP COLUMN ${column}`);
    const columns = Object.keys(row);
    sql.exec(`INSERT INTO request (id, ${columns.join(", ")}) VALUES (1, ${columns.map(() => "?").join(", ")})`, ...Object.values(row));
    kv.delete(REQUEST_KEY);
  });
}
