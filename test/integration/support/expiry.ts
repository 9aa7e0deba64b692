/** A request object's TTL, run now: its expiry moved into the past, the object evicted, its alarm run. */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import type { requestStub } from "../../../worker/stubs";

/** Runs the TTL alarm of a live (or delivered) request now; returns whether it ran and the tables left (besides SQLite's and workerd's own). */
export async function expireAndRunAlarm(stub: ReturnType<typeof requestStub>) {
  await runInDurableObject(stub, (_i, state) => void state.storage.sql.exec("UPDATE request SET expires_at = ?", Date.now() - 1));
  await evictDurableObject(stub);
  const ran = await runDurableObjectAlarm(stub);
  const tables = await runInDurableObject(stub, (_i, state) =>
    state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'sqlite_%'").toArray(),
  );
  return { ran, tables };
}
