/**
 * What a runtime left in its persist directory, read after it stopped: RequestDO requests (the
 * `request` key of each object's key-value storage, or the table of an earlier release) counted per
 * SQLite file, split into live rows (`status != 'delivered'`: pending, approved, denied; none may
 * be left after expiry) and tombstones (`status = 'delivered'`, kept without payload until the
 * request's original expiry by design, for the replay alarm; README, "Contract notes"); and,
 * for the soak, every file searched as bytes for secrets that must not be there.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { deserialize } from "node:v8";

export interface RequestRows {
  files: number;
  /** Rows with `status != 'delivered'`. */
  rows: number;
  /** Delivered requests' tombstones (`status = 'delivered'`). */
  tombstones: number;
  /** Rows of either kind past their `expires_at` at the scan: what the expiry alarm should have erased. */
  expired: number;
}

/** The stored requests of one object: its key-value entry (workerd stores values V8-serialized), and a table an earlier release made. */
function storedRequests(db: DatabaseSync): Array<{ status: string; expires_at: number }> {
  const has = (table: string) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
  const rows: Array<{ status: string; expires_at: number }> = [];
  if (has("_cf_KV")) {
    const entry = db.prepare("SELECT value FROM _cf_KV WHERE key = 'request'").get() as { value: Uint8Array } | undefined;
    if (entry) rows.push(deserialize(entry.value) as { status: string; expires_at: number });
  }
  if (has("request")) rows.push(...(db.prepare("SELECT status, expires_at FROM request").all() as Array<{ status: string; expires_at: number }>));
  return rows;
}

function countRequestRows(file: string, now: number): Omit<RequestRows, "files"> {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const rows = storedRequests(db);
    return {
      rows: rows.filter((r) => r.status !== "delivered").length,
      tombstones: rows.filter((r) => r.status === "delivered").length,
      expired: rows.filter((r) => r.expires_at <= now).length,
    };
  } finally {
    db.close();
  }
}

function walk(dir: string, visit: (path: string, name: string) => void): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) walk(full, visit);
    else visit(full, entry.name);
  }
}

/** Opens every SQLite file under `dir` and counts RequestDO rows, tombstones apart. */
export function scanRequestRows(dir: string): RequestRows {
  const total: RequestRows = { files: 0, rows: 0, tombstones: 0, expired: 0 };
  const now = Date.now();
  walk(dir, (path, name) => {
    if (!name.endsWith(".sqlite")) return;
    total.files++;
    const counted = countRequestRows(path, now);
    total.rows += counted.rows;
    total.tombstones += counted.tombstones;
    total.expired += counted.expired;
  });
  return total;
}

/**
 * Reads every file (SQLite databases, WAL and journal files, blobs) as bytes and looks for every
 * secret; `marker`, which must be found, is the positive control that the scan sees data.
 */
export function scanForSecrets(dir: string, secrets: string[], marker: string) {
  let files = 0;
  let bytes = 0;
  let found = 0;
  let markerFound = false;
  const needles = secrets.map((s) => Buffer.from(s));
  walk(dir, (path) => {
    files++;
    const content = readFileSync(path);
    bytes += content.length;
    if (content.includes(marker)) markerFound = true;
    for (const needle of needles) if (content.includes(needle)) found++;
  });
  const rows = scanRequestRows(dir);
  return { files, bytes, credential_values_checked: secrets.length, credential_values_found: found, request_rows_left: rows.rows, tombstones_left: rows.tombstones, marker_found: markerFound };
}
