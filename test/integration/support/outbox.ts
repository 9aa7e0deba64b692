import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { sleep } from "../../support/sleep";

export const accountObject = (accountId: string) => env.ACCOUNTS.get(env.ACCOUNTS.idFromName(accountId));

export type OutboxRow = {
  id: string;
  channel: string;
  type: string;
  request_id: string | null;
  destination: string;
  body: string;
  created_at: number;
  attempts: number;
  next_at: number;
  last_status: number | null;
};

type StoredEntry = Omit<OutboxRow, "request_id" | "next_at"> & { next_at: number | null };

type OwedRow = { seq: number; request_id: string | null; owed: string };

/** The audit rows that owe notifications (durable-objects/account/notify/owed.ts). */
const owedRows = (sql: SqlStorage) => sql.exec<OwedRow>("SELECT seq, request_id, owed FROM audit WHERE owed IS NOT NULL").toArray();

/**
 * The account's outbox as stored: every entry still owed, from the audit rows that carry them, one
 * row each. An entry its issuance sent (`next_at` null: durable-objects/account/notify/owed.ts) owes nothing.
 */
export function outboxRows(accountId: string): Promise<OutboxRow[]> {
  return runInDurableObject(accountObject(accountId), (_instance, state) =>
    owedRows(state.storage.sql)
      .flatMap((row) => (JSON.parse(row.owed) as StoredEntry[]).flatMap((entry) => (entry.next_at === null ? [] : [{ ...entry, next_at: entry.next_at, request_id: row.request_id }])))
      .sort((a, b) => a.created_at - b.created_at || a.id.localeCompare(b.id)),
  );
}

/**
 * An explicit clock for the outbox: moves every time the account's notifications and audit log
 * stored back by `ms` (as if `ms` had passed for them), then runs the object's alarm as its scheduler would.
 * Tests never sleep through a backoff. Returns whether an alarm ran.
 */
export async function advanceAndRunAlarm(accountId: string, ms: number): Promise<boolean> {
  const stub = accountObject(accountId);
  await runInDurableObject(stub, async (_instance, state) => {
    const sql = state.storage.sql;
    // The log's times too: the alarm reads it back only as far as an entry can be owed.
    sql.exec("UPDATE audit SET at = at - ?", ms);
    for (const row of owedRows(sql)) {
      const entries = (JSON.parse(row.owed) as StoredEntry[]).map((entry) => ({ ...entry, next_at: entry.next_at === null ? null : entry.next_at - ms, created_at: entry.created_at - ms }));
      sql.exec("UPDATE audit SET owed = ? WHERE seq = ?", JSON.stringify(entries), row.seq);
    }
    state.storage.sql.exec("UPDATE notice_window SET started_at = started_at - ?", ms);
    const alarm = await state.storage.getAlarm();
    if (alarm !== null) await state.storage.setAlarm(alarm - ms);
  });
  return runDurableObjectAlarm(stub);
}

/** Polls an async read until it gives a value (background work in the objects finishes on its own). */
export async function eventually<T>(read: () => Promise<T | undefined>, what: string): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const value = await read();
    if (value !== undefined) return value;
    await sleep(25);
  }
  throw new Error(`never saw ${what}`);
}
