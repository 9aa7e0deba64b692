/**
 * The account's active-request slots (README, "Contract notes": at most 5 pending or approved
 * requests) and each agent's issuance count (at most 10 `requested` events a minute), as synchronous
 * steps of the AccountDO's `issue` transaction.
 *
 * A slot is its request's `requested` audit row (./live-slots.ts): taking one is writing that event,
 * and a request's end is read from the log, not written (bench/README.md, "Cost per handoff").
 */
import { MAX_ACTIVE_REQUESTS_PER_ACCOUNT, MAX_ISSUED_PER_AGENT_PER_MINUTE } from "../../core/limits";
import type { AuditEventInput, IssueInput } from "./account-types";
import { ALL_OF_THE_LOG, liveSlots, requestedRowOf, requestedRows } from "./live-slots";

export type SlotRefusal = { reason: "too_many_requests"; retryAfterSeconds: number; cause: "rate_limited" | "active_requests" };
export type RecordEvent = (event: Omit<AuditEventInput, "lookedUp">, now: number) => void;

/**
 * Takes a slot by writing the `requested` event, which also counts against the agent's minute,
 * before the request object exists: a concurrent issuance (the object's input gate opens while it
 * awaits) sees both. One read of the log serves the count and the cap. `horizonMs`: how far back a
 * live slot can be (./live-slots.ts, `slotHorizonMs`). Null when taken; else the refusal, audited.
 */
export function takeSlot(
  sql: SqlStorage,
  input: Pick<IssueInput, "requestId" | "userCode" | "expiresAt" | "auditDetail">,
  slot: { agentId: string; consoleView: string },
  now: number,
  horizonMs: number,
  record: RecordEvent,
): SlotRefusal | null {
  const { agentId } = slot;
  const read = [...requestedRows(sql, now, horizonMs)];
  // Newest first: the last is the first to leave the minute.
  const issued = read.filter((row) => row.agentId === agentId && row.at > now - 60_000);
  if (issued.length >= MAX_ISSUED_PER_AGENT_PER_MINUTE) {
    record({ type: "request_refused", agentId, detail: { reason: "rate_limited" } }, now);
    return { reason: "too_many_requests", retryAfterSeconds: Math.max(1, Math.ceil((issued[issued.length - 1]!.at + 60_000 - now) / 1000)), cause: "rate_limited" };
  }
  const active = read.filter((row) => row.held);
  if (active.length >= MAX_ACTIVE_REQUESTS_PER_ACCOUNT) {
    record({ type: "request_refused", agentId, detail: { reason: "too_many_requests" } }, now);
    const soonest = Math.min(...active.map((row) => row.expiresAt!));
    return { reason: "too_many_requests", retryAfterSeconds: Math.max(1, Math.ceil((soonest - now) / 1000)), cause: "active_requests" };
  }
  // The console's summary rides in the same row (./console-feed.ts).
  const columns = { userCode: input.userCode, expiresAt: input.expiresAt, consoleView: slot.consoleView };
  record({ type: "requested", requestId: input.requestId, agentId, detail: input.auditDetail, slot: columns }, now);
  return null;
}

/** The user code was taken by a live request: the `requested` row, which is the slot, goes (the worker draws again). */
export function dropSlot(sql: SqlStorage, requestId: string): void {
  sql.exec("DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit WHERE type = 'requested' AND request_id = ?)", requestId);
}

/** Read back from the request's own `requested` row, a few events old: the read stops there. */
export const holdsSlot = (sql: SqlStorage, requestId: string, now: number) => requestedRowOf(sql, requestId, now)?.held === true;

/** A deleted agent's requests that may still be live, from the whole log: rare, and whatever REQUEST_TTL_SECONDS was when they were made. */
export function liveSlotsOf(sql: SqlStorage, agentId: string, now: number): string[] {
  return liveSlots(sql, now, ALL_OF_THE_LOG)
    .filter((row) => row.agentId === agentId && row.userCode !== null)
    .map((row) => row.userCode!);
}
