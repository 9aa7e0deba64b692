/**
 * Where an account's active-request slots live: on the audit log's `requested` rows
 * (bench/README.md, "Cost per handoff"). A `requested` row carries what the slot needs (the user
 * code, `expires_at`, the console's summary), written once with the event: no row of its own, no
 * index (each would be one more row written per issuance or per event). A request holds its slot
 * while that row is unexpired and no ending event follows it in the log: `denied`, `locked`,
 * `expired` or `delivered` of the request, or `agent_deleted` of its agent. Nothing is written when
 * a request ends.
 *
 * The live slots are found by reading the log newest first and stopping at the first event older
 * than the longest a request can live (`slotHorizonMs`), so an ending event is always read before
 * the `requested` row it follows. Rows read are billed too ($0.001 per million): a quiet account
 * reads its handful of recent events; a busy one reads every event of the span, at most the whole
 * log (AUDIT_LIMIT events, its noise and the rows kept for live slots: ./audit-log.ts), about 1,250
 * rows, $1.25 per million issuances, which a handful of handoffs a minute stays far below.
 */
import { requestTtlSeconds } from "../../core/limits";
import { newestFirst } from "./log-pages";

/** A `requested` row as the slot reads it, and what the newer events say of it. */
export interface SlotRow {
  seq: number;
  at: number;
  requestId: string;
  agentId: string;
  userCode: string | null;
  expiresAt: number | null;
  consoleView: string | null;
  /** Unexpired, and no ending event follows: the request holds its slot. */
  held: boolean;
  /** An `approved` event follows: the request waits for no operator (the console leaves it out). */
  approved: boolean;
}

const ENDING: ReadonlySet<string> = new Set(["denied", "locked", "expired", "delivered"]);

/**
 * How far back a live slot's `requested` row can be: the longest a request lives. That is
 * REQUEST_TTL_SECONDS (CIBA's `requested_expiry` is capped by it, and a DPoP-bound delivery's grace
 * window ends by the request's expiry: core/request-state.ts), and at least the per-agent minute
 * the same read counts; plus a minute for the clocks of the worker that set `expires_at` and of
 * this object. A request issued under a longer REQUEST_TTL_SECONDS than the one deployed now stops
 * counting against the cap after the new one; a deleted agent's requests and the log's eviction
 * read the whole log instead (`ALL_OF_THE_LOG`), so those are revoked and kept whatever the setting.
 */
export const slotHorizonMs = (env: Env): number => (Math.max(requestTtlSeconds(env.REQUEST_TTL_SECONDS), 60) + 60) * 1000;

export const ALL_OF_THE_LOG = Number.POSITIVE_INFINITY;

type LogRow = { seq: number; at: number; type: string; request_id: string | null; agent_id: string | null; user_code: string | null; expires_at: number | null; console_view: string | null };

/**
 * The `requested` rows of the last `horizonMs`, newest first, each with whether it holds its slot.
 * A generator: a caller that finds what it looks for stops the read there.
 */
export function* requestedRows(sql: SqlStorage, now: number, horizonMs: number): Generator<SlotRow> {
  const since = now - horizonMs;
  const ended = new Set<string>();
  const approved = new Set<string>();
  const deletedAgents = new Set<string>();
  for (const row of newestFirst<LogRow>(sql, "seq, at, type, request_id, agent_id, user_code, expires_at, console_view")) {
    if (row.at <= since) return;
    if (row.type === "agent_deleted" && row.agent_id) deletedAgents.add(row.agent_id);
    if (!row.request_id) continue;
    if (ENDING.has(row.type)) ended.add(row.request_id);
    if (row.type === "approved") approved.add(row.request_id);
    if (row.type !== "requested" || !row.agent_id) continue;
    const held = row.expires_at !== null && row.expires_at > now && !ended.has(row.request_id) && !deletedAgents.has(row.agent_id);
    yield {
      seq: row.seq,
      at: row.at,
      requestId: row.request_id,
      agentId: row.agent_id,
      userCode: row.user_code,
      expiresAt: row.expires_at,
      consoleView: row.console_view,
      held,
      approved: approved.has(row.request_id),
    };
  }
}

/** The requests holding a slot, soonest to expire first. */
export function liveSlots(sql: SqlStorage, now: number, horizonMs: number): SlotRow[] {
  return [...requestedRows(sql, now, horizonMs)].filter((row) => row.held).sort((a, b) => a.expiresAt! - b.expiresAt!);
}

/** The request's newest `requested` row, read until it is found. */
export function requestedRowOf(sql: SqlStorage, requestId: string, now: number, horizonMs = ALL_OF_THE_LOG): SlotRow | null {
  for (const row of requestedRows(sql, now, horizonMs)) if (row.requestId === requestId) return row;
  return null;
}
