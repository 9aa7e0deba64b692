import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { vi } from "vitest";

export const accountObject = (accountId: string) => env.ACCOUNTS.get(env.ACCOUNTS.idFromName(accountId));

export interface OutboxRow {
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
}

/** The account's outbox table as stored. */
export function outboxRows(accountId: string): Promise<OutboxRow[]> {
  return runInDurableObject(accountObject(accountId), (_instance, state) => state.storage.sql.exec<OutboxRow>("SELECT * FROM outbox ORDER BY created_at").toArray());
}

/**
 * Runs the object's alarm as if the clock read `at` (an explicit clock instead of waiting: the
 * object's `Date.now()` is the test's, they share one isolate). Returns whether an alarm ran.
 */
export async function runAlarmAt(stub: DurableObjectStub, at: number): Promise<boolean> {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(at);
  try {
    return await runDurableObjectAlarm(stub);
  } finally {
    vi.useRealTimers();
  }
}
