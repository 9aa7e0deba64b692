/**
 * One Durable Object per operator, addressed by `idFromName("<account_id>/<operator_id>")`: the
 * operator's saved credentials (README, "Saved credentials"), each a compact JWE the operator's
 * browser sealed under a key derived from its passkey's PRF output. Nothing here can open one.
 *
 * Ownership is the address: only the worker, for the signed-in operator's own session, names this
 * object, so another operator's item is not a row to filter out but an object never reached.
 * As in VaultDO, the constructor writes nothing and the table is made by the first `put`.
 */
import { DurableObject } from "cloudflare:workers";
import { MAX_SAVED_CREDENTIALS_PER_OPERATOR } from "../../core/limits";

const SCHEMA = `CREATE TABLE IF NOT EXISTS saved_credentials (
  name TEXT PRIMARY KEY,
  jwe TEXT NOT NULL,
  passkey_id TEXT NOT NULL,
  prf_salt TEXT NOT NULL,
  updated_at INTEGER NOT NULL
)`;

export interface SavedEntry {
  name: string;
  /** The passkey whose PRF output sealed the item (WebAuthn credential ID, base64url). */
  passkeyId: string;
  /** The PRF input (32 bytes, base64url) that passkey evaluates to reopen it. */
  prfSalt: string;
  /** Unix ms. */
  updatedAt: number;
}

export interface SavedItem extends SavedEntry {
  jwe: string;
}

export type SavePutResult = { reason: "stored" } | { reason: "full" };
export type SaveGetResult = { reason: "found"; item: SavedItem } | { reason: "not_found" };

type Row = { name: string; jwe: string; passkey_id: string; prf_salt: string; updated_at: number };

const entryOf = (row: Omit<Row, "jwe">): SavedEntry => ({ name: row.name, passkeyId: row.passkey_id, prfSalt: row.prf_salt, updatedAt: row.updated_at });

export class SavedCredentialsDO extends DurableObject<Env> {
  /** Whether the table exists; known after the first look. */
  #hasTable: boolean | null = null;

  /** Stores or replaces `name`; a new name beyond the cap is refused. */
  async put(item: Omit<SavedItem, "updatedAt">, now = Date.now()): Promise<SavePutResult> {
    const sql = this.ctx.storage.sql;
    return this.ctx.storage.transactionSync(() => {
      if (!this.#tableExists()) {
        sql.exec(SCHEMA);
        this.#hasTable = true;
      }
      const exists = sql.exec("SELECT 1 FROM saved_credentials WHERE name = ?", item.name).toArray().length > 0;
      if (!exists && sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM saved_credentials").one().n >= MAX_SAVED_CREDENTIALS_PER_OPERATOR) {
        return { reason: "full" } as const;
      }
      sql.exec(
        `INSERT INTO saved_credentials (name, jwe, passkey_id, prf_salt, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET jwe = excluded.jwe, passkey_id = excluded.passkey_id, prf_salt = excluded.prf_salt, updated_at = excluded.updated_at`,
        item.name,
        item.jwe,
        item.passkeyId,
        item.prfSalt,
        now,
      );
      return { reason: "stored" } as const;
    });
  }

  async list(): Promise<SavedEntry[]> {
    if (!this.#tableExists()) return [];
    return this.ctx.storage.sql
      .exec<Omit<Row, "jwe">>("SELECT name, passkey_id, prf_salt, updated_at FROM saved_credentials ORDER BY name")
      .toArray()
      .map(entryOf);
  }

  async get(name: string): Promise<SaveGetResult> {
    if (!this.#tableExists()) return { reason: "not_found" };
    const row = this.ctx.storage.sql.exec<Row>("SELECT * FROM saved_credentials WHERE name = ?", name).toArray()[0];
    return row ? { reason: "found", item: { ...entryOf(row), jwe: row.jwe } } : { reason: "not_found" };
  }

  /** Whether there was such an item. */
  async remove(name: string): Promise<boolean> {
    if (!this.#tableExists()) return false;
    return this.ctx.storage.sql.exec("DELETE FROM saved_credentials WHERE name = ?", name).rowsWritten > 0;
  }

  /** Erases every item, table and all: the operator was removed. Idempotent. */
  async erase(): Promise<void> {
    await this.ctx.storage.deleteAll();
    this.#hasTable = false;
  }

  #tableExists(): boolean {
    this.#hasTable ??= this.ctx.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'saved_credentials'").toArray().length > 0;
    return this.#hasTable;
  }
}
