/**
 * One Durable Object per agent, addressed by `idFromName(agent_id)`: the zero-knowledge vault.
 * It only ever holds ciphertext the agent's SDK made from its master seed (DESIGN.md).
 *
 * The constructor writes nothing: an object that is only read (a list, a miss) stays empty, so
 * traffic that never stores anything makes no storage. The table is made on the first write.
 */
import { DurableObject } from "cloudflare:workers";
import { MAX_VAULT_ITEMS_PER_AGENT } from "../../core/limits";

const SCHEMA = `CREATE TABLE IF NOT EXISTS items (
  vault_key TEXT PRIMARY KEY,
  ciphertext TEXT NOT NULL,
  updated_at INTEGER NOT NULL
)`;

export interface VaultItem {
  vaultKey: string;
  ciphertext: string;
  /** Milliseconds since the epoch. */
  updatedAt: number;
}

export type VaultEntry = Omit<VaultItem, "ciphertext">;

export type PutResult = { reason: "stored"; item: VaultEntry } | { reason: "vault_full" };
export type GetResult = { reason: "found"; item: VaultItem } | { reason: "not_found" };

type Row = { vault_key: string; ciphertext: string; updated_at: number };

export class VaultDO extends DurableObject<Env> {
  /** Whether the table exists; known after the first look. */
  #hasTable: boolean | null = null;

  async put(vaultKey: string, ciphertext: string): Promise<PutResult> {
    const sql = this.ctx.storage.sql;
    const updatedAt = Date.now();
    return this.ctx.storage.transactionSync(() => {
      this.#createTable();
      const exists = sql.exec("SELECT 1 FROM items WHERE vault_key = ?", vaultKey).toArray().length > 0;
      if (!exists && sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM items").one().n >= MAX_VAULT_ITEMS_PER_AGENT) {
        return { reason: "vault_full" } as const;
      }
      sql.exec(
        "INSERT INTO items (vault_key, ciphertext, updated_at) VALUES (?, ?, ?) ON CONFLICT (vault_key) DO UPDATE SET ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
        vaultKey,
        ciphertext,
        updatedAt,
      );
      return { reason: "stored", item: { vaultKey, updatedAt } } as const;
    });
  }

  async get(vaultKey: string): Promise<GetResult> {
    if (!this.#tableExists()) return { reason: "not_found" };
    const row = this.ctx.storage.sql.exec<Row>("SELECT vault_key, ciphertext, updated_at FROM items WHERE vault_key = ?", vaultKey).toArray()[0];
    return row ? { reason: "found", item: { vaultKey: row.vault_key, ciphertext: row.ciphertext, updatedAt: row.updated_at } } : { reason: "not_found" };
  }

  async list(): Promise<VaultEntry[]> {
    if (!this.#tableExists()) return [];
    return this.ctx.storage.sql
      .exec<Omit<Row, "ciphertext">>("SELECT vault_key, updated_at FROM items ORDER BY vault_key")
      .toArray()
      .map((row) => ({ vaultKey: row.vault_key, updatedAt: row.updated_at }));
  }

  async delete(vaultKey: string): Promise<void> {
    if (this.#tableExists()) this.ctx.storage.sql.exec("DELETE FROM items WHERE vault_key = ?", vaultKey);
  }

  /** Erases the whole vault, table and all: its agent was deleted (the object then reads as empty). */
  async purge(): Promise<void> {
    await this.ctx.storage.deleteAll();
    this.#hasTable = false;
  }

  #tableExists(): boolean {
    this.#hasTable ??= this.ctx.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'items'").toArray().length > 0;
    return this.#hasTable;
  }

  #createTable(): void {
    if (this.#tableExists()) return;
    this.ctx.storage.sql.exec(SCHEMA);
    this.#hasTable = true;
  }
}
