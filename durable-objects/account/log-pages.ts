/**
 * The audit log read newest first, for the readers that stop at the first event older than they
 * need (the live slots: ./live-slots.ts; the notifications still owed: ./notify/owed.ts). The log
 * keeps no index on time (one more row written per event), so the rowid order is the time order.
 */

/**
 * `columns` of the log newest first, in pages that double (8, 16, … 256 rows): each page's cursor is
 * read to its end (a cursor left open keeps its statement), and a read that stops early reads at
 * most about as many rows again as it used.
 */
export function* newestFirst<Row extends { seq: number }>(sql: SqlStorage, columns: string): Generator<Row> {
  let before = Number.MAX_SAFE_INTEGER;
  for (let size = 8; ; size = Math.min(size * 2, 256)) {
    const page = sql.exec<Row>(`SELECT ${columns} FROM audit WHERE seq < ? ORDER BY seq DESC LIMIT ?`, before, size).toArray();
    yield* page;
    if (page.length < size) return;
    before = page[page.length - 1]!.seq;
  }
}
