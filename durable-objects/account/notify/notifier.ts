/**
 * The AccountDO's notifications: which audit events notify whom (webhook events, operator emails,
 * CIBA pings), the cap on operator notices, and the alarm that works the outbox. The AccountDO
 * hands it the account row and calls `enqueueFor` inside the transaction that records the audit
 * event, so an event is stored exactly when its cause is; then `sendDue` for the first attempt, and
 * `deliverDue` from its alarm for the retries.
 */
import type { AuditEventInput, AuditEventType } from "../account-types";
import { recordAudit } from "../audit-log";
import { NOTICE_CAP_SCHEMA, NoticeCap, noticeBurst, type HeldBack } from "./notice-cap";
import type { RequestSummary, WebhookEventType, WebhookFormat } from "./notice-types";
import { OUTBOX_SCHEMA, Outbox, maxRetryDelayMs, type OutboxEntry } from "./outbox";
import { mimeMessage, notificationMime, replayText } from "./email-message";
import { attempt } from "./send";
import { PushSubscriptions } from "../push-subscriptions";
import type { PushPayload } from "./web-push";
import { summaryBody, summaryText, webhookBody, type WebhookEvent } from "./webhook-body";

export const NOTIFY_SCHEMA = [...OUTBOX_SCHEMA, ...NOTICE_CAP_SCHEMA];

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

const eventId = () => `evt_${[...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
const webhookOf = (account: NotifyAccount | undefined) =>
  account?.webhook_url && account.webhook_secret ? { url: account.webhook_url, secret: account.webhook_secret } : null;

export class Notifier {
  readonly #outbox: Outbox;
  readonly #cap: NoticeCap;
  readonly #push: PushSubscriptions;
  /** Rows stored by this invocation's transaction, already leased for their first attempt. */
  #fresh: OutboxEntry[] = [];

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly env: Env,
    private readonly now: () => number = Date.now,
  ) {
    this.#outbox = new Outbox(ctx.storage.sql, maxRetryDelayMs(env.NOTIFY_MAX_RETRY_DELAY_SECONDS));
    this.#cap = new NoticeCap(ctx.storage.sql, noticeBurst(env.NOTIFY_BURST));
    this.#push = new PushSubscriptions(ctx.storage.sql);
  }

  /** The notifications a request's audit event causes. Synchronous: call it inside the event's transaction. */
  enqueueFor(account: NotifyAccount, event: AuditEventInput, now: number): void {
    const request = event.request;
    if (event.ping && request) {
      this.#store(
        {
          id: eventId(),
          channel: "ping",
          type: "ping",
          requestId: request.requestId,
          agentId: request.agent.id,
          destination: event.ping.endpoint,
          body: JSON.stringify({ auth_req_id: event.ping.authReqId }),
          bearer: event.ping.token,
        },
        now,
      );
    }
    const type = webhookEventType(event.type);
    if (!type || type === "credential.requested" || !request) return;
    const decidedBy = event.type === "locked" ? "locked" : typeof event.actor === "object" ? event.actor.email : (event.actor ?? null);
    const caller = event.type === "replay_detected" ? (event.detail ?? null) : null;
    const email =
      type === "credential.replayed"
        ? mimeMessage(this.#from(), account.operator_email, `Replayed credential request (${request.vaultKey})`, replayText(request, caller ?? {}), now)
        : null;
    // README, "Approval policies (N-of-M)": an approval by several operators names them all.
    const approvers = event.type === "approved" && Array.isArray(event.detail?.approvers) ? (event.detail.approvers as WebhookEvent["approvers"]) : null;
    this.#enqueueNotice(account, request, { type, decidedBy, caller, approvers }, now, email);
  }

  /** `credential.requested` and the operator's email (README, "Device flow or push"). */
  enqueueRequested(account: NotifyAccount, notice: RequestedNotice, now: number): void {
    const email = notificationMime(
      this.#from(),
      account.operator_email,
      { details: notice.request, expiresAt: notice.request.expiresAt, approvalUrl: notice.approvalUrl, userCode: notice.userCode },
      now,
    );
    const admitted = this.#enqueueNotice(account, notice.request, { type: "credential.requested", approvalUrl: notice.approvalUrl }, now, email);
    if (admitted) this.#enqueuePushes(notice.request, now);
  }

  /**
   * One push per subscribed browser of the account's operators (README, "Push to your phone"): who
   * asks and for what, and the console at the request; never a code, token or credential. The body
   * is encrypted at each attempt, to the subscription as it is then. No link, no push.
   */
  #enqueuePushes(request: RequestSummary, now: number): void {
    const base = this.env.PUBLIC_BASE_URL?.trim().replace(/\/+$/, "");
    if (!base) return;
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
    for (const subscription of this.#push.all()) {
      this.#store({ requestId: request.requestId, agentId: request.agent.id, id: eventId(), channel: "push", type: "credential.requested", destination: subscription.subscriptionId, body }, now);
    }
  }

  /** A plain email to one address (an operator's invitation), through the same outbox; never capped. */
  enqueueEmail(to: string, subject: string, text: string, now: number): void {
    this.#store({ requestId: null, agentId: null, id: eventId(), channel: "email", type: "email", destination: to, body: mimeMessage(this.#from(), to, subject, text, now) }, now);
  }

  /**
   * The first attempt at the rows just stored, at once, in the background, instead of by an alarm:
   * they were stored leased, and the alarm is set to the lease's end before anything is sent, so
   * if the object dies mid-attempt the alarm retries; when every row is settled the alarm goes.
   */
  async sendDue(account: NotifyAccount | undefined): Promise<void> {
    // Only rows whose transaction committed (one that threw left its entries here, rolled back).
    const fresh = this.#fresh.splice(0).filter((entry) => this.#outbox.has(entry.id));
    if (fresh.length > 0) return this.ctx.waitUntil(this.#attemptAll(account, fresh));
    // Nothing to send now; a notice held back by the cap still owes its summary at the window's end.
    if (this.#cap.summaryDueAt() !== null) await this.#reschedule();
  }

  /** The alarm: send the summary a closed window owes, then every due row once; reschedule. */
  async deliverDue(account: NotifyAccount | undefined): Promise<void> {
    const due = this.ctx.storage.transactionSync(() => {
      const now = this.now();
      const heldBack = this.#cap.closeIfDue(now);
      if (heldBack && account) this.#enqueueSummary(account, heldBack, now);
      return [...this.#fresh.splice(0), ...this.#outbox.claimDue(now)];
    });
    await this.#attemptAll(account, due);
  }

  async #attemptAll(account: NotifyAccount | undefined, due: OutboxEntry[]): Promise<void> {
    await this.#reschedule();
    if (due.length === 0) return;
    const webhook = webhookOf(account);
    await Promise.all(
      due.map(async (entry) => {
        const outcome = await attempt(entry, { env: this.env, webhook, now: this.now, push: this.#push });
        this.ctx.storage.transactionSync(() => {
          const now = this.now();
          const settled = this.#outbox.settle(entry, outcome, now);
          if (settled.reason !== "failed") return;
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
        });
      }),
    );
    await this.#reschedule();
  }

  /**
   * The alarm at the next due row, lease end or summary, or none. Read and set in one synchronous
   * step (no await between), so concurrent sends and the alarm cannot leave it stale.
   */
  #reschedule(): Promise<void> {
    const candidates = [this.#outbox.nextDueAt(), this.#cap.summaryDueAt()].filter((at): at is number => at !== null);
    return candidates.length === 0 ? this.ctx.storage.deleteAlarm() : this.ctx.storage.setAlarm(Math.min(...candidates));
  }

  #store(entry: Parameters<Outbox["enqueue"]>[0], now: number): void {
    this.#fresh.push(this.#outbox.enqueue(entry, now));
  }

  /** One operator notice: a webhook event (when the account has a webhook) and, if given, an email; capped (false: held back). */
  #enqueueNotice(
    account: NotifyAccount,
    request: RequestSummary,
    event: Pick<WebhookEvent, "type" | "approvalUrl" | "decidedBy" | "caller" | "approvers">,
    now: number,
    email: string | null,
  ): boolean {
    const webhook = webhookOf(account);
    if (!webhook && email === null) return false;
    if (!this.#cap.admit(event.type, now, webhook ? NOTIFYING_WITH_WEBHOOK : EMAILED)) return false;
    const common = { requestId: request.requestId, agentId: request.agent.id };
    if (webhook) {
      const id = eventId();
      const body = webhookBody(webhookFormatOf(account), { ...event, id, createdAt: now, request, accountName: account.name });
      this.#store({ ...common, id, channel: "webhook", type: event.type, destination: webhook.url, body }, now);
    }
    if (email !== null) this.#store({ ...common, id: eventId(), channel: "email", type: "email", destination: account.operator_email, body: email }, now);
    return true;
  }

  #enqueueSummary(account: NotifyAccount, held: HeldBack, now: number): void {
    const common = { requestId: null, agentId: null };
    const text = summaryText(account.account_id, held.counts, held.since, held.until);
    if (account.webhook_url && account.webhook_secret) {
      const id = eventId();
      const body = summaryBody(webhookFormatOf(account), id, account.account_id, held.counts, held.since, held.until);
      this.#store({ ...common, id, channel: "webhook", type: "notifications.summarized", destination: account.webhook_url, body }, now);
    }
    const mail = mimeMessage(this.#from(), account.operator_email, "Keyferry notifications held back", text, now);
    this.#store({ ...common, id: eventId(), channel: "email", type: "email", destination: account.operator_email, body: mail }, now);
  }

  #from(): string {
    return this.env.EMAIL_FROM || "keyferry@keyferry.local";
  }
}
