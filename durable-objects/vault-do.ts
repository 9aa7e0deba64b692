/**
 * One Durable Object per agent, addressed by `idFromName(agent_id)`: the zero-knowledge vault.
 * It only ever holds ciphertext the agent's SDK made from its master seed (DESIGN.md).
 */
import { DurableObject } from "cloudflare:workers";
import { MAX_VAULT_ITEMS_PER_AGENT } from "../core/limits";

const SCHEMA = `CREATE TABLE IF NOT EXISTS items (
  vault_key TEXT PRIMARY KEY,
  ciphertext TEXT NOT NULL,
  updated_at INTEGER NOT NULL
)`;

export interface VaultItem {
  vault_key: string;
  ciphertext: string;
  updated_at: string;
}

export type PutResult = { reason: "stored"; vault_key: string; updated_at: string } | { reason: "vault_full" };

export class VaultDO extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      ctx.storage.sql.exec(SCHEMA);
    });
  }

  async put(vaultKey: string, ciphertext: string): Promise<PutResult> {
    const sql = this.ctx.storage.sql;
    const now = Date.now();
    return this.ctx.storage.transactionSync(() => {
      const exists = sql.exec("SELECT 1 FROM items WHERE vault_key = ?", vaultKey).toArray().length > 0;
      if (!exists) {
        const count = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM items").one().n;
        if (count >= MAX_VAULT_ITEMS_PER_AGENT) return { reason: "vault_full" } as const;
      }
      sql.exec(
        "INSERT INTO items (vault_key, ciphertext, updated_at) VALUES (?, ?, ?) ON CONFLICT (vault_key) DO UPDATE SET ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
        vaultKey,
        ciphertext,
        now,
      );
      return { reason: "stored", vault_key: vaultKey, updated_at: new Date(now).toISOString() } as const;
    });
  }

  async get(vaultKey: string): Promise<VaultItem | null> {
    const row = this.ctx.storage.sql
      .exec<{ vault_key: string; ciphertext: string; updated_at: number }>("SELECT * FROM items WHERE vault_key = ?", vaultKey)
      .toArray()[0];
    return row ? { vault_key: row.vault_key, ciphertext: row.ciphertext, updated_at: new Date(row.updated_at).toISOString() } : null;
  }

  async list(): Promise<{ vault_key: string; updated_at: string }[]> {
    return this.ctx.storage.sql
      .exec<{ vault_key: string; updated_at: number }>("SELECT vault_key, updated_at FROM items ORDER BY vault_key")
      .toArray()
      .map((row) => ({ vault_key: row.vault_key, updated_at: new Date(row.updated_at).toISOString() }));
  }

  async delete(vaultKey: string): Promise<void> {
    this.ctx.storage.sql.exec("DELETE FROM items WHERE vault_key = ?", vaultKey);
  }
}
