// Ceiling: read one row from an existing SQLite Durable Object (one RPC call, one SELECT).
// `?n=<name>` picks one of a pool of objects seeded beforehand with `?seed=1`, as polls spread over many requests.
import { DurableObject } from "cloudflare:workers";

export class Row extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS row (id INTEGER PRIMARY KEY, value TEXT NOT NULL)");
  }

  seed() {
    this.ctx.storage.sql.exec("INSERT OR REPLACE INTO row (id, value) VALUES (1, ?)", "pending");
  }

  read() {
    return this.ctx.storage.sql.exec("SELECT value FROM row WHERE id = 1").toArray()[0]?.value ?? null;
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const stub = env.ROWS.get(env.ROWS.idFromName(url.searchParams.get("n") ?? "0"));
    if (url.searchParams.has("seed")) {
      await stub.seed();
      return new Response(null, { status: 204 });
    }
    const value = await stub.read();
    return new Response(JSON.stringify({ value }), { headers: { "Content-Type": "application/json", "Cache-Control": "no-store" } });
  },
};
