/**
 * The operator-notification cap: in any NOTICE_WINDOW_MS an account's operator gets at most
 * `burst` notices (emails and webhook events) one by one; the rest are held back and counted by
 * event type, and one summary naming each type goes out NOTICE_WINDOW_MS after the first was held
 * back. A flood of short-lived requests (`requested_expiry=1` churn) then costs the operator at most
 * `burst` + 1 messages per window, not one per request. Security alerts (SECURITY_ALERTS: a replayed
 * code) are never held back nor counted against the burst: one noisy agent must not hide the alert
 * that reveals a leaked code. The audit log still records every event. CIBA pings, which go to the
 * agent, are not capped.
 *
 * The window slides and is read from the audit log, not stored (bench/README.md, "Cost per
 * handoff": a stored window was one row written per notice, then one per window opened, which a
 * quiet account paid on every handoff): a notice goes out while fewer than `burst` events of the
 * types that notify this account were logged in the last NOTICE_WINDOW_MS, held-back ones included,
 * so a flood that goes on is summarized window after window rather than let through `burst` at a
 * time. The `notice_window` row exists only while notices are held back: written by the first
 * (`started_at`), updated by each later one, deleted when its summary is due.
 */
import { newestFirst } from "../log-pages";
import type { WebhookEventType } from "./notice-types";

export const NOTICE_CAP_SCHEMA = [
  `CREATE TABLE notice_window (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    started_at INTEGER NOT NULL,
    start_seq INTEGER NOT NULL DEFAULT 0, -- read by no one since the window slides (schema 6 and older counted from it)
    held_back TEXT NOT NULL DEFAULT '{}'
  )`,
];

export const NOTICE_WINDOW_MS = 10 * 60_000;
export const DEFAULT_NOTICE_BURST = 20;

/** Notices that always go out at once, whatever the burst: they reveal a leaked code. */
export const SECURITY_ALERTS: ReadonlySet<WebhookEventType> = new Set(["credential.replayed"]);

/** `NOTIFY_BURST` var: notices per account per window before the rest are summarized. */
export function noticeBurst(value: string | undefined): number {
  const parsed = Number.parseInt(value ?? "", 10);
  return Number.isFinite(parsed) && parsed >= 1 ? parsed : DEFAULT_NOTICE_BURST;
}

/** Held back, by event type. */
export type HeldBackCounts = Partial<Record<WebhookEventType, number>>;
type WindowRow = { started_at: number; held_back: string };

export interface HeldBack {
  counts: HeldBackCounts;
  since: number;
  until: number;
}

export class NoticeCap {
  constructor(
    private readonly sql: SqlStorage,
    private readonly burst: number,
  ) {}

  /**
   * One notice, whose audit event is written next in this transaction (carrying the notice: ./owed.ts):
   * true when it may go out now, false when it is held back for the summary. `notifying`: the audit types that notify this
   * account (every lifecycle event with a webhook, else only `requested`, which is emailed).
   */
  admit(type: WebhookEventType, now: number, notifying: readonly string[]): boolean {
    if (SECURITY_ALERTS.has(type)) return true;
    if (this.#recentNotices(now, new Set(notifying)) < this.burst) return true;
    const row = this.#row();
    const counts = row ? heldOf(row) : {};
    counts[type] = (counts[type] ?? 0) + 1;
    if (row) this.sql.exec("UPDATE notice_window SET held_back = ?", JSON.stringify(counts));
    else this.sql.exec("INSERT INTO notice_window (id, started_at, held_back) VALUES (1, ?, ?)", now, JSON.stringify(counts));
    return false;
  }

  /** The events of the last NOTICE_WINDOW_MS of the `notifying` types, newest first, counted up to the burst (no further rows read). */
  #recentNotices(now: number, notifying: ReadonlySet<string>): number {
    let count = 0;
    for (const event of newestFirst<{ seq: number; at: number; type: string }>(this.sql, "seq, at, type")) {
      if (count >= this.burst || event.at <= now - NOTICE_WINDOW_MS) break;
      if (notifying.has(event.type)) count++;
    }
    return count;
  }

  /** The window has ended with notices held back: returns what its summary must say, and resets it. */
  closeIfDue(now: number): HeldBack | null {
    const row = this.#row();
    if (!row || now < row.started_at + NOTICE_WINDOW_MS) return null;
    const counts = heldOf(row);
    if (Object.keys(counts).length === 0) return null;
    this.sql.exec("DELETE FROM notice_window");
    return { counts, since: row.started_at, until: row.started_at + NOTICE_WINDOW_MS };
  }

  /** When a summary falls due, if one is owed: the alarm must run then. */
  summaryDueAt(): number | null {
    const row = this.#row();
    return row && Object.keys(heldOf(row)).length > 0 ? row.started_at + NOTICE_WINDOW_MS : null;
  }

  #row(): WindowRow | undefined {
    return this.sql.exec<WindowRow>("SELECT started_at, held_back FROM notice_window").toArray()[0];
  }
}

const heldOf = (row: WindowRow): HeldBackCounts => JSON.parse(row.held_back) as HeldBackCounts;
