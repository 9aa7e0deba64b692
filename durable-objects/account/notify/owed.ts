/**
 * Where the outbox's entries live (./outbox.ts): on the audit row of the event that owes them, in
 * its `owed` column (JSON, one object per entry), written by the event's own INSERT. An entry
 * costs no row of its own (bench/README.md, "Cost per handoff"): an acknowledgement or a final
 * failure rewrites the column, NULL once nothing is owed, and the stored bodies and any CIBA
 * bearer token go with it; an issuance's entry accepted at its first attempt (`withIssuance`) is
 * not rewritten but stays, never due. The log's eviction keeps a row that still owes (../audit-log.ts).
 *
 * No index finds the owed rows (an index entry is one more row written per event): an entry is
 * owed for at most OWED_SPAN_MS after its event, so the alarm reads the log newest first and stops
 * at the first older event (../log-pages.ts), as ../live-slots.ts does back to the longest a request lives. Rows read are billed too: the
 * first attempt and its acknowledgement read only their own row, by its key.
 */
import { newestFirst } from "../log-pages";
import { LEASE_MS, MAX_DELAY_MS, OWED_SPAN_MS, RETRY_WINDOW_MS, retryDelayMs, type AttemptOutcome, type Channel, type NewOutboxEntry, type OutboxEntry, type Settled } from "./outbox";

/** The `audit` column (../account-schema.ts adds it in the 5 -> 6 step). */
export const AUDIT_OWED_COLUMN = "owed TEXT";

/** SQL: the row carries an entry that can come due (none when `owed` is NULL, or holds only entries an issuance sent: `withIssuance`). */
export const OWES_SOMETHING = "EXISTS (SELECT 1 FROM json_each(owed) WHERE json_extract(value, '$.next_at') IS NOT NULL)";

/** One entry as stored in `audit.owed`: the old `outbox` table's columns, less the row's own. */
export type StoredEntry = {
  id: string;
  channel: Channel;
  type: string;
  destination: string;
  body: string;
  bearer: string | null;
  created_at: number;
  attempts: number;
  /** When it comes due; null while its issuance makes the first attempt (`withIssuance`): never due by itself. */
  next_at: number | null;
  last_status: number | null;
};

type OwedRow = { seq: number; at: number; request_id: string | null; agent_id: string | null; owed: string | null };

/** Entries attempted per alarm; the rest wait for the next one, which is set at once. */
const BATCH = 20;

/**
 * Stored before its first attempt and already claimed for it: counted as attempted and leased for
 * LEASE_MS in the same row write, so an attempt that succeeds costs no lease row; if the object
 * dies mid-attempt the entry comes due when the lease ends.
 */
export function leased(entry: NewOutboxEntry, now: number): StoredEntry {
  return { ...entry, bearer: entry.bearer ?? null, created_at: now, attempts: 1, next_at: now + LEASE_MS, last_status: null };
}

/**
 * Stored for an issuance, which makes the first attempt itself before it answers
 * (./notifier.ts, `sendFirst`): never due until the issuance hands it over (`handOver`, a refused
 * attempt's retry or one still running), so an attempt accepted writes nothing more (bench/README.md,
 * "Cost per handoff"). Its object lost before the answer, the issuance fails, no agent holds the
 * request's code, and the entry is never sent. One accepted stays in its row, inert, until the
 * log evicts the row.
 */
export function withIssuance(entry: NewOutboxEntry, now: number): StoredEntry {
  return { ...leased(entry, now), next_at: null };
}

const entryOf = (row: Pick<OwedRow, "seq" | "request_id" | "agent_id">, stored: StoredEntry): OutboxEntry => ({
  seq: row.seq,
  requestId: row.request_id,
  agentId: row.agent_id,
  id: stored.id,
  channel: stored.channel,
  type: stored.type,
  destination: stored.destination,
  body: stored.body,
  bearer: stored.bearer,
  createdAt: stored.created_at,
  attempts: stored.attempts,
  nextAt: stored.next_at,
});

/** The audit rows' owed entries. Synchronous SQL only: callers put it inside their own `transactionSync`. */
export class OwedEntries {
  constructor(
    private readonly sql: SqlStorage,
    private readonly maxDelayMs = MAX_DELAY_MS,
    private readonly random: () => number = Math.random,
  ) {}

  /** The entries an audit row now carries, as they will be sent (their row's request and agent). */
  carried(seq: number, row: { requestId?: string | undefined; agentId?: string | undefined }, stored: StoredEntry[]): OutboxEntry[] {
    return stored.map((entry) => entryOf({ seq, request_id: row.requestId ?? null, agent_id: row.agentId ?? null }, entry));
  }

  /**
   * The entries due now, each counted as attempted and leased for LEASE_MS before it is sent (one
   * row write per audit row): if the object dies mid-attempt it comes due again, and the receiver
   * may see it twice (same id). `nextAt`: the earliest any entry still owed comes due, leases included.
   */
  claimDue(now: number): { due: OutboxEntry[]; nextAt: number | null } {
    const due: OutboxEntry[] = [];
    let nextAt: number | null = null;
    for (const row of this.#owedRows(now)) {
      const entries = JSON.parse(row.owed!) as StoredEntry[];
      let claimed = false;
      for (const entry of entries) {
        if (entry.next_at === null) continue;
        if (entry.next_at <= now && due.length < BATCH) {
          entry.attempts += 1;
          entry.next_at = now + LEASE_MS;
          due.push(entryOf(row, entry));
          claimed = true;
        }
        nextAt = Math.min(nextAt ?? entry.next_at, entry.next_at);
      }
      if (claimed) this.sql.exec("UPDATE audit SET owed = ? WHERE seq = ?", JSON.stringify(entries), row.seq);
    }
    return { due, nextAt };
  }

  /** Drops an acknowledged or final entry from its row, or schedules its next attempt. */
  settle(entry: OutboxEntry, outcome: AttemptOutcome, now: number): Settled {
    const entries = this.#entriesOf(entry.seq);
    const stored = entries.find((candidate) => candidate.id === entry.id);
    // Settled already (an attempt lost and retried, then both answered): nothing to do twice.
    if (!stored) return { reason: "done" };
    // Accepted at its issuance's own attempt: nothing could send it again, so nothing is written.
    if (stored.next_at === null && outcome.reason === "acknowledged") return { reason: "done" };
    const nextAt = outcome.reason === "retry" ? now + retryDelayMs(entry.attempts, outcome.retryAfterMs, this.random, this.maxDelayMs) : null;
    // Abandoned only once a failed attempt comes at least RETRY_WINDOW_MS after the event.
    const settled: Settled =
      outcome.reason === "acknowledged"
        ? { reason: "done" }
        : nextAt === null || now - entry.createdAt >= RETRY_WINDOW_MS
          ? { reason: "failed", attempts: entry.attempts, status: outcome.status }
          : { reason: "rescheduled", nextAt };
    if (settled.reason === "rescheduled") Object.assign(stored, { next_at: settled.nextAt, last_status: outcome.status });
    const kept = settled.reason === "rescheduled" ? entries : entries.filter((candidate) => candidate !== stored);
    this.sql.exec("UPDATE audit SET owed = ? WHERE seq = ?", kept.length > 0 ? JSON.stringify(kept) : null, entry.seq);
    return settled;
  }

  /** An issuance's entries whose first attempt outlived its wait: due by `at` (the attempt's lease), like a leased entry. */
  handOver(entries: OutboxEntry[], at: number): void {
    for (const seq of new Set(entries.map((entry) => entry.seq))) {
      const ids = new Set(entries.filter((entry) => entry.seq === seq).map((entry) => entry.id));
      const stored = this.#entriesOf(seq);
      for (const entry of stored) if (ids.has(entry.id) && entry.next_at === null) entry.next_at = at;
      if (stored.length > 0) this.sql.exec("UPDATE audit SET owed = ? WHERE seq = ?", JSON.stringify(stored), seq);
    }
  }

  /** Whether the entry is stored (its transaction committed) and still owed. */
  has(entry: Pick<OutboxEntry, "seq" | "id">): boolean {
    return this.#entriesOf(entry.seq).some((stored) => stored.id === entry.id);
  }

  /** A row's entries withdrawn unsent (its issuance was undone): nothing of them is kept. */
  withdraw(seq: number): void {
    this.sql.exec("UPDATE audit SET owed = NULL WHERE seq = ? AND owed IS NOT NULL", seq);
  }

  #entriesOf(seq: number): StoredEntry[] {
    const row = this.sql.exec<{ owed: string | null }>("SELECT owed FROM audit WHERE seq = ?", seq).toArray()[0];
    return row?.owed ? (JSON.parse(row.owed) as StoredEntry[]) : [];
  }

  /** The rows that owe something, newest first, read back only as far as an entry can be owed (read whole before any is rewritten). */
  #owedRows(now: number): OwedRow[] {
    const rows: OwedRow[] = [];
    for (const row of newestFirst<OwedRow>(this.sql, "seq, at, request_id, agent_id, owed")) {
      if (row.at < now - OWED_SPAN_MS) break;
      if (row.owed !== null) rows.push(row);
    }
    return rows;
  }
}
