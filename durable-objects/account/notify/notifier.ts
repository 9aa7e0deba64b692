/**
 * The AccountDO's notifications: which audit events notify whom (webhook events, operator emails,
 * CIBA pings, pushes), the cap on operator notices, and the alarm that works the outbox. The
 * AccountDO hands it the account row; inside the transaction that records an audit event it asks
 * `enqueueFor` (or `enqueueRequested`, `enqueueEmail`) what the event owes and `record`s the event
 * carrying it in its own row (./owed.ts), so a notification is stored exactly when its cause is;
 * then `sendDue` (or, for an issuance, `sendFirst`) for the first attempt, and `deliverDue` from
 * its alarm for the retries.
 */
import type { AuditEventInput, AuditEventType } from "../account-types";
import { recordAudit } from "../audit-log";
import { NoticeCap, noticeBurst, type HeldBack } from "./notice-cap";
import type { RequestSummary, WebhookEventType, WebhookFormat } from "./notice-types";
import { LEASE_MS, maxRetryDelayMs, type NewOutboxEntry, type OutboxEntry } from "./outbox";
import { OwedEntries, leased, withIssuance } from "./owed";
import { mimeMessage, notificationMime, replayText } from "./email-message";
import { attempt } from "./send";
import { PushSubscriptions } from "../push-subscriptions";
import type { PushPayload } from "./web-push";
import { summaryBody, summaryText, webhookBody, type WebhookEvent } from "./webhook-body";

/** The account as notifications need it (a subset of the AccountDO's `account` row). */
export type NotifyAccount = {
  account_id: string;
  name: string;
  operator_email: string;
  webhook_url: string | null;
  webhook_secret: string | null;
  webhook_format: string;
};

/** `credential.requested` comes from the worker, which alone can sign the approval link. */
export interface RequestedNotice {
  request: RequestSummary;
  approvalUrl: string | null;
  /** Device flow: the code the operator may type; null for a pushed request. */
  userCode: string | null;
}

/** The lifecycle audit events that become webhook events (the team's agreed mapping). */
export function webhookEventType(type: AuditEventType): WebhookEventType | null {
  switch (type) {
    case "requested":
      return "credential.requested";
    case "approved":
      return "credential.approved";
    case "denied":
    case "locked":
      return "credential.denied";
    case "delivered":
      return "credential.delivered";
    case "expired":
      return "credential.expired";
    case "replay_detected":
      return "credential.replayed";
    default:
      return null;
  }
}

/** The audit types whose notices the cap counts (./notice-cap.ts): with a webhook, every lifecycle event but the replay alert; without, the emailed `requested`. */
const NOTIFYING_WITH_WEBHOOK = ["requested", "approved", "denied", "locked", "delivered", "expired"] as const;
const EMAILED = ["requested"] as const;

export const webhookFormatOf = (account: Pick<NotifyAccount, "webhook_format">): WebhookFormat => (account.webhook_format === "slack" ? "slack" : "keyferry");

/** How long an issuance waits for its notices' first attempt (`sendFirst`): a mail is accepted in milliseconds, a webhook within its receiver's round trip. */
export const FIRST_ATTEMPT_WAIT_MS = 2_000;

/** Whether `work` finished, successfully, within `ms`. */
async function settledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([work.then(() => true, () => false), late]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

const eventId = () => `evt_${[...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
const webhookOf = (account: NotifyAccount | undefined) =>
  account?.webhook_url && account.webhook_secret ? { url: account.webhook_url, secret: account.webhook_secret } : null;

export class Notifier {
  readonly #owed: OwedEntries;
  readonly #cap: NoticeCap;
  readonly #push: PushSubscriptions;
  /** Entries stored by this invocation's transaction, already leased for their first attempt. */
  #fresh: OutboxEntry[] = [];
  /** The alarm as this instance last read or set it (undefined: not read yet; null: none armed). */
  #alarmAt: number | null | undefined;

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly env: Env,
    private readonly now: () => number = Date.now,
  ) {
    this.#owed = new OwedEntries(ctx.storage.sql, maxRetryDelayMs(env.NOTIFY_MAX_RETRY_DELAY_SECONDS));
    this.#cap = new NoticeCap(ctx.storage.sql, noticeBurst(env.NOTIFY_BURST));
    this.#push = new PushSubscriptions(ctx.storage.sql);
  }

  /**
   * Appends an audit event (../audit-log.ts) carrying the notifications it owes in its own row,
   * stored leased for their first attempt, or, for an issuance (`sendFirst`), held by it
   * (./owed.ts, `withIssuance`). Synchronous: call it inside the event's transaction.
   */
  record(event: Omit<AuditEventInput, "lookedUp">, now: number, owed: NewOutboxEntry[] = [], byIssuance = false): void {
    const stored = owed.map((entry) => (byIssuance ? withIssuance(entry, now) : leased(entry, now)));
    const seq = recordAudit(this.ctx.storage.sql, event, now, stored.length > 0 ? JSON.stringify(stored) : null);
    this.#fresh.push(...this.#owed.carried(seq, event, stored));
  }

  /**
   * A request's entries just stored, kept out of the next `sendDue` (anyone's: the object's input
   * gate opens while its issuance awaits the request object) until `resume` hands them back.
   */
  setAside(requestId: string): OutboxEntry[] {
    const aside = this.#fresh.filter((entry) => entry.requestId === requestId);
    this.#fresh = this.#fresh.filter((entry) => entry.requestId !== requestId);
    return aside;
  }

  resume(entries: OutboxEntry[]): void {
    this.#fresh.push(...entries);
  }

  /** Entries set aside whose issuance was undone: not sent, nor kept (a row already deleted is left as it is). */
  withdraw(entries: OutboxEntry[]): void {
    for (const seq of new Set(entries.map((entry) => entry.seq))) this.#owed.withdraw(seq);
  }

  /** The notifications a request's audit event owes (for `record`). Synchronous: call it inside the event's transaction. */
  enqueueFor(account: NotifyAccount, event: AuditEventInput, now: number): NewOutboxEntry[] {
    const owed: NewOutboxEntry[] = [];
    const request = event.request;
    if (event.ping && request) {
      owed.push(
        {
          id: eventId(),
          channel: "ping",
          type: "ping",
          destination: event.ping.endpoint,
          body: JSON.stringify({ auth_req_id: event.ping.authReqId }),
          bearer: event.ping.token,
        },
      );
    }
    const type = webhookEventType(event.type);
    if (!type || type === "credential.requested" || !request) return owed;
    const decidedBy = event.type === "locked" ? "locked" : typeof event.actor === "object" ? event.actor.email : (event.actor ?? null);
    const caller = event.type === "replay_detected" ? (event.detail ?? null) : null;
    const email =
      type === "credential.replayed"
        ? mimeMessage(this.#from(), account.operator_email, `Replayed credential request (${request.vaultKey})`, replayText(request, caller ?? {}), now)
        : null;
    // README, "Approval policies (N-of-M)": an approval by several operators names them all.
    const approvers = event.type === "approved" && Array.isArray(event.detail?.approvers) ? (event.detail.approvers as WebhookEvent["approvers"]) : null;
    return [...owed, ...this.#enqueueNotice(account, request, { type, decidedBy, caller, approvers }, now, email)];
  }

  /** `credential.requested`, the operator's email and pushes (README, "Device flow or push"), owed by the `requested` event. */
  enqueueRequested(account: NotifyAccount, notice: RequestedNotice, now: number): NewOutboxEntry[] {
    const email = notificationMime(
      this.#from(),
      account.operator_email,
      { details: notice.request, expiresAt: notice.request.expiresAt, approvalUrl: notice.approvalUrl, userCode: notice.userCode },
      now,
    );
    const notices = this.#enqueueNotice(account, notice.request, { type: "credential.requested", approvalUrl: notice.approvalUrl }, now, email);
    return notices.length > 0 ? [...notices, ...this.#enqueuePushes(notice.request)] : [];
  }

  /**
   * One push per subscribed browser of the account's operators (README, "Push to your phone"): who
   * asks and for what, and the console at the request; never a code, token or credential. The body
   * is encrypted at each attempt, to the subscription as it is then. No link, no push.
   */
  #enqueuePushes(request: RequestSummary): NewOutboxEntry[] {
    const base = this.env.PUBLIC_BASE_URL?.trim().replace(/\/+$/, "");
    if (!base) return [];
    const payload: PushPayload = {
      type: "credential.requested",
      request_id: request.requestId,
      agent: { name: request.agent.name },
      description: request.description,
      vault_key: request.vaultKey,
      expires_at: new Date(request.expiresAt).toISOString(),
      url: `${base}/console#request=${request.requestId}`,
    };
    const body = JSON.stringify(payload);
    return this.#push.all().map((subscription) => ({ id: eventId(), channel: "push", type: "credential.requested", destination: subscription.subscriptionId, body }));
  }

  /** A plain email to one address (an operator's invitation), through the same outbox; never capped. */
  enqueueEmail(to: string, subject: string, text: string, now: number): NewOutboxEntry[] {
    return [{ id: eventId(), channel: "email", type: "email", destination: to, body: mimeMessage(this.#from(), to, subject, text, now) }];
  }

  /**
   * The first attempt at the entries just stored by a call that does not wait for receivers (every
   * event but an issuance's: `sendFirst`), at once, in the background, instead of by an alarm: they
   * were stored leased, and the alarm is armed by the lease's end before anything is sent, so if
   * the object dies mid-attempt the alarm retries. An alarm already armed earlier
   * covers the lease (no row written); and once the attempts are acknowledged it is left armed,
   * to fire once, find nothing due and stop, rather than deleted (bench/README.md, "Cost per
   * handoff": a deletion is a row written, $1.00 a million; the alarm's run a request, $0.15).
   */
  async sendDue(account: NotifyAccount | undefined): Promise<void> {
    const fresh = this.#takeFresh();
    // A notice held back by the cap owes its summary at the window's end.
    const wakeAt = [...fresh.map((entry) => entry.nextAt), this.#cap.summaryDueAt()].filter((at): at is number => at !== null);
    if (wakeAt.length === 0) return;
    // Armed before this call answers (its answer waits for the write), attempted after, in the background.
    await this.#arm(Math.min(...wakeAt));
    if (fresh.length > 0) this.ctx.waitUntil(this.#attemptAll(account, fresh));
  }

  /**
   * An issuance's notices (../issuance.ts), stored held by it (./owed.ts, `withIssuance`): the
   * first attempt awaited, for at most FIRST_ATTEMPT_WAIT_MS, before the issuance answers. An
   * attempt accepted writes nothing and arms no alarm (bench/README.md, "Cost per handoff": a row
   * written each, and the alarm's run a request); one refused is rescheduled and arms the alarm for
   * the retry (#attemptAll); one still running is handed over, due by its lease's end with the
   * alarm armed then, and goes on in the background. Either way, once an agent holds its code every
   * notice of its request is acknowledged or has its alarm, as when the alarm was set first. An
   * object lost before that fails the issuance, so no agent holds the code, and its notices are never sent.
   */
  async sendFirst(account: NotifyAccount | undefined): Promise<void> {
    const fresh = this.#takeFresh();
    const summaryAt = this.#cap.summaryDueAt();
    if (summaryAt !== null) await this.#arm(summaryAt);
    if (fresh.length === 0) return;
    const running = new Set(fresh);
    const attempts = this.#attemptAll(account, fresh, (entry) => running.delete(entry));
    if (await settledWithin(attempts, FIRST_ATTEMPT_WAIT_MS)) return;
    // Only the attempts with no outcome yet: one answered meanwhile was settled as the issuance's own.
    const leaseEnd = this.now() + LEASE_MS;
    this.ctx.storage.transactionSync(() => this.#owed.handOver([...running], leaseEnd));
    await this.#arm(leaseEnd);
    this.ctx.waitUntil(attempts);
  }

  /** The alarm: send the summary a closed window owes, then every due entry once; armed again for what is still owed. */
  async deliverDue(account: NotifyAccount | undefined): Promise<void> {
    // The alarm that fired is spent: whatever is still owed arms the next.
    this.#alarmAt = null;
    const { due, nextAt } = this.ctx.storage.transactionSync(() => {
      const now = this.now();
      const heldBack = this.#cap.closeIfDue(now);
      if (heldBack && account) this.#recordSummary(account, heldBack, now);
      const claimed = this.#owed.claimDue(now);
      return { ...claimed, due: [...this.#takeFresh(), ...claimed.due] };
    });
    const wakeAt = [nextAt, this.#cap.summaryDueAt()].filter((at): at is number => at !== null);
    if (wakeAt.length > 0) await this.#arm(Math.min(...wakeAt));
    await this.#attemptAll(account, due);
  }

  /** The entries stored since the last first attempt, whose transaction committed (one that threw left its entries here, rolled back). */
  #takeFresh(): OutboxEntry[] {
    return this.#fresh.splice(0).filter((entry) => this.#owed.has(entry));
  }

  /** `answered`: told of each entry's outcome before it is settled. */
  async #attemptAll(account: NotifyAccount | undefined, due: OutboxEntry[], answered?: (entry: OutboxEntry) => void): Promise<void> {
    const webhook = webhookOf(account);
    await Promise.all(
      due.map(async (entry) => {
        const outcome = await attempt(entry, { env: this.env, webhook, now: this.now, push: this.#push });
        answered?.(entry);
        const settled = this.ctx.storage.transactionSync(() => {
          const now = this.now();
          const settled = this.#owed.settle(entry, outcome, now);
          if (settled.reason === "failed") {
            recordAudit(
              this.ctx.storage.sql,
              {
                type: "notification_failed",
                ...(entry.requestId ? { requestId: entry.requestId } : {}),
                ...(entry.agentId ? { agentId: entry.agentId } : {}),
                detail: { channel: entry.channel, event: entry.type, event_id: entry.id, attempts: settled.attempts, status: settled.status },
              },
              now,
            );
          }
          return settled;
        });
        if (settled.reason === "rescheduled") await this.#arm(settled.nextAt);
      }),
    );
  }

  /**
   * The alarm armed by `at`: set only when none is armed or the one armed is later (an earlier one
   * finds nothing due, or some of it, and arms again for the rest). Compared and set with no await
   * between, against what this instance last read or set, so concurrent sends cannot leave it late.
   */
  async #arm(at: number): Promise<void> {
    if (this.#alarmAt === undefined) {
      const stored = await this.ctx.storage.getAlarm();
      if (this.#alarmAt === undefined) this.#alarmAt = stored;
    }
    if (this.#alarmAt !== null && this.#alarmAt <= at) return;
    this.#alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }

  /** One operator notice: a webhook event (when the account has a webhook) and, if given, an email; capped (none: held back). */
  #enqueueNotice(
    account: NotifyAccount,
    request: RequestSummary,
    event: Pick<WebhookEvent, "type" | "approvalUrl" | "decidedBy" | "caller" | "approvers">,
    now: number,
    email: string | null,
  ): NewOutboxEntry[] {
    const webhook = webhookOf(account);
    if (!webhook && email === null) return [];
    if (!this.#cap.admit(event.type, now, webhook ? NOTIFYING_WITH_WEBHOOK : EMAILED)) return [];
    const owed: NewOutboxEntry[] = [];
    if (webhook) {
      const id = eventId();
      const body = webhookBody(webhookFormatOf(account), { ...event, id, createdAt: now, request, accountName: account.name });
      owed.push({ id, channel: "webhook", type: event.type, destination: webhook.url, body });
    }
    if (email !== null) owed.push({ id: eventId(), channel: "email", type: "email", destination: account.operator_email, body: email });
    return owed;
  }

  /** The summary of a window's held-back notices: an audit event of its own, which carries it. */
  #recordSummary(account: NotifyAccount, held: HeldBack, now: number): void {
    const owed: NewOutboxEntry[] = [];
    const text = summaryText(account.account_id, held.counts, held.since, held.until);
    if (account.webhook_url && account.webhook_secret) {
      const id = eventId();
      const body = summaryBody(webhookFormatOf(account), id, account.account_id, held.counts, held.since, held.until);
      owed.push({ id, channel: "webhook", type: "notifications.summarized", destination: account.webhook_url, body });
    }
    const mail = mimeMessage(this.#from(), account.operator_email, "Keyferry notifications held back", text, now);
    owed.push({ id: eventId(), channel: "email", type: "email", destination: account.operator_email, body: mail });
    const counts = Object.entries(held.counts).map(([event, count]) => ({ event, count: count ?? 0 }));
    const detail = { held_back: counts, since: new Date(held.since).toISOString(), until: new Date(held.until).toISOString() };
    this.record({ type: "notices_held_back", detail }, now, owed);
  }

  #from(): string {
    return this.env.EMAIL_FROM || "keyferry@keyferry.local";
  }
}
