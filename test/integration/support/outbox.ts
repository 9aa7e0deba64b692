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

/** The account's outbox table as stored. */
export function outboxRows(accountId: string): Promise<OutboxRow[]> {
  return runInDurableObject(accountObject(accountId), (_instance, state) =>
    state.storage.sql.exec<OutboxRow>("SELECT * FROM outbox ORDER BY created_at, id").toArray(),
  );
}

/**
 * An explicit clock for the outbox: moves every time the account's notifications stored back by
 * `ms` (as if `ms` had passed for them), then runs the object's alarm as its scheduler would.
 * Tests never sleep through a backoff. Returns whether an alarm ran.
 */
export async function advanceAndRunAlarm(accountId: string, ms: number): Promise<boolean> {
  const stub = accountObject(accountId);
  await runInDurableObject(stub, async (_instance, state) => {
    state.storage.sql.exec("UPDATE outbox SET next_at = next_at - ?, created_at = created_at - ?", ms, ms);
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
