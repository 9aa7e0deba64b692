/**
 * One Durable Object per DPoP key, addressed by `idFromName(thumbprint)`: the `jti`s its proofs
 * carried (RFC 9449 §11.1), so a proof works once across every request bound to that key, not once
 * per request. A `jti` is kept while its proof's `iat` is inside the window core/dpop.ts accepts;
 * after that the proof is refused for its age anyway. Only a request object asks, and only for a
 * proof by its own bound key (durable-objects/dpop/README.md).
 */
import { DurableObject } from "cloudflare:workers";
import { DPOP_MAX_AGE_SECONDS } from "../../core/dpop";

export class DpopJtiDO extends DurableObject<Env> {
  /** The `jti` hashes kept, mirrored from the `jti` table. */
  #seen = new Set<string>();
  /** When the alarm fires, or null; memory only (read back from storage on load). */
  #alarmAt: number | null = null;
  /** The table exists: made at the first `jti`, dropped with everything by `deleteAll`. */
  #hasTable = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      const sql = this.ctx.storage.sql;
      this.#hasTable = sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jti'").toArray().length > 0;
      if (this.#hasTable) this.#seen = new Set(sql.exec<{ hash: string }>("SELECT hash FROM jti").toArray().map((r) => r.hash));
      this.#alarmAt = await this.ctx.storage.getAlarm();
    });
  }

  /** Whether a proof with this `jti` hash was seen before; remembers it until `until` (Unix ms) either way. */
  async seen(jtiHash: string, until: number): Promise<boolean> {
    if (this.#seen.has(jtiHash)) return true;
    this.#seen.add(jtiHash);
    const sql = this.ctx.storage.sql;
    if (!this.#hasTable) sql.exec("CREATE TABLE IF NOT EXISTS jti (hash TEXT PRIMARY KEY, until INTEGER NOT NULL)");
    this.#hasTable = true;
    sql.exec("INSERT OR IGNORE INTO jti (hash, until) VALUES (?, ?)", jtiHash, until);
    // One alarm a window's length past the latest `until`: about one alarm write a minute at most.
    if (this.#alarmAt === null || this.#alarmAt < until) {
      this.#alarmAt = until + DPOP_MAX_AGE_SECONDS * 1000;
      await this.ctx.storage.setAlarm(this.#alarmAt);
    }
    return false;
  }

  /** Forgets the `jti`s whose proofs are too old to be accepted; the object ends when none are left. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const sql = this.ctx.storage.sql;
    if (!this.#hasTable) return;
    const live = sql.exec<{ hash: string; until: number }>("SELECT hash, until FROM jti WHERE until > ?", now).toArray();
    if (live.length === 0) {
      this.#seen = new Set();
      this.#alarmAt = null;
      this.#hasTable = false;
      await this.ctx.storage.deleteAll();
      return;
    }
    sql.exec("DELETE FROM jti WHERE until <= ?", now);
    this.#seen = new Set(live.map((r) => r.hash));
    this.#alarmAt = Math.max(...live.map((r) => r.until)) + 1;
    await this.ctx.storage.setAlarm(this.#alarmAt);
  }
}
