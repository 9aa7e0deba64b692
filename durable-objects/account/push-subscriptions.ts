/**
 * The browsers an account's operators asked to be pushed to (README, "Push to your phone"): one
 * row per `PushSubscription` (RFC 8030 §4 push resource, RFC 8291 §3 keys), owned by the operator
 * who subscribed. A browser that subscribes again (same endpoint) replaces its row; an operator
 * keeps at most MAX_PER_OPERATOR; removing the operator removes them all.
 */
import type { PushSubscriptionRecord } from "./notify/web-push";

export const PUSH_SUBSCRIPTION_SCHEMA = `CREATE TABLE IF NOT EXISTS push_subscriptions (
  subscription_id TEXT PRIMARY KEY,
  operator_id TEXT NOT NULL,
  endpoint TEXT NOT NULL UNIQUE,
  p256dh TEXT NOT NULL,
  auth TEXT NOT NULL,
  created_at INTEGER NOT NULL
)`;

/** Phones, laptops and browsers one person uses; more is a bug or an attack, and each costs a push per request. */
export const MAX_PUSH_SUBSCRIPTIONS_PER_OPERATOR = 10;

export interface StoredPushSubscription extends PushSubscriptionRecord {
  subscriptionId: string;
  operatorId: string;
}

type Row = { subscription_id: string; operator_id: string; endpoint: string; p256dh: string; auth: string };

export class PushSubscriptions {
  constructor(private readonly sql: SqlStorage) {}

  /** Stores (or replaces, for the same endpoint) a subscription; null when the operator already has the most. */
  add(operatorId: string, subscription: PushSubscriptionRecord, subscriptionId: string, now: number): string | null {
    const same = this.sql.exec<{ subscription_id: string }>("SELECT subscription_id FROM push_subscriptions WHERE endpoint = ?", subscription.endpoint).toArray()[0];
    if (same) this.sql.exec("DELETE FROM push_subscriptions WHERE endpoint = ?", subscription.endpoint);
    const count = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM push_subscriptions WHERE operator_id = ?", operatorId).one().n;
    if (count >= MAX_PUSH_SUBSCRIPTIONS_PER_OPERATOR) return null;
    this.sql.exec(
      "INSERT INTO push_subscriptions (subscription_id, operator_id, endpoint, p256dh, auth, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      subscriptionId,
      operatorId,
      subscription.endpoint,
      subscription.p256dh,
      subscription.auth,
      now,
    );
    return subscriptionId;
  }

  /** Only the operator who subscribed may unsubscribe. */
  remove(operatorId: string, subscriptionId: string): boolean {
    return this.sql.exec("DELETE FROM push_subscriptions WHERE subscription_id = ? AND operator_id = ?", subscriptionId, operatorId).rowsWritten > 0;
  }

  removeOperator(operatorId: string): void {
    this.sql.exec("DELETE FROM push_subscriptions WHERE operator_id = ?", operatorId);
  }

  /** The push service said the subscription is gone (404/410, RFC 8030 §7.3). */
  forget(subscriptionId: string): void {
    this.sql.exec("DELETE FROM push_subscriptions WHERE subscription_id = ?", subscriptionId);
  }

  byId(subscriptionId: string): StoredPushSubscription | null {
    const row = this.sql.exec<Row>("SELECT subscription_id, operator_id, endpoint, p256dh, auth FROM push_subscriptions WHERE subscription_id = ?", subscriptionId).toArray()[0];
    return row ? stored(row) : null;
  }

  all(): StoredPushSubscription[] {
    return this.sql
      .exec<Row>("SELECT subscription_id, operator_id, endpoint, p256dh, auth FROM push_subscriptions ORDER BY created_at")
      .toArray()
      .map(stored);
  }
}

const stored = (row: Row): StoredPushSubscription => ({ subscriptionId: row.subscription_id, operatorId: row.operator_id, endpoint: row.endpoint, p256dh: row.p256dh, auth: row.auth });
