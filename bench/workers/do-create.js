// Ceiling: create a new SQLite Durable Object per request and write one row to it.
import { DurableObject } from "cloudflare:workers";

export class Row extends DurableObject {
  write(value) {
    const sql = this.ctx.storage.sql;
    sql.exec("CREATE TABLE IF NOT EXISTS row (id INTEGER PRIMARY KEY, value TEXT NOT NULL)");
    sql.exec("INSERT INTO row (id, value) VALUES (1, ?)", value);
    return true;
  }
}

export default {
  async fetch(request, env) {
    const stub = env.ROWS.get(env.ROWS.idFromName(crypto.randomUUID()));
    await stub.write("pending");
    return new Response(JSON.stringify({ ok: true }), { status: 201, headers: { "Content-Type": "application/json", "Cache-Control": "no-store" } });
  },
};
