/** A request object's TTL, run now: its expiry moved into the past, the object evicted, its alarm run. */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import type { requestStub } from "../../../worker/stubs";
import { patchRequestRow, storedKeys } from "./request-row";

/**
 * Runs the TTL alarm of a live (or delivered) request now; returns whether it ran, and what is left:
 * the tables (besides SQLite's and workerd's own) and the keys of the key-value storage.
 */
export async function expireAndRunAlarm(stub: ReturnType<typeof requestStub>) {
  await runInDurableObject(stub, (_i, state) => patchRequestRow(state, { expires_at: Date.now() - 1 }));
  await evictDurableObject(stub);
  const ran = await runDurableObjectAlarm(stub);
  return { ran, ...(await leftInStorage(stub)) };
}

/** The tables (besides SQLite's and workerd's own) and the key-value keys an object holds. */
export const leftInStorage = (stub: ReturnType<typeof requestStub>) =>
  runInDurableObject(stub, (_i, state) => ({
    tables: state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'sqlite_%'").toArray(),
    keys: storedKeys(state),
  }));
