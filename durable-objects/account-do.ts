/**
 * One Durable Object per account, addressed by `idFromName(account_id)`: the account's settings,
 * its agents and their API-key hashes, the active-request slots and the audit log
 * (durable-objects/README.md documents the tables).
 */
import { DurableObject } from "cloudflare:workers";
import { MAX_ACTIVE_REQUESTS_PER_ACCOUNT } from "../core/limits";
import type {
  AccountView,
  AuditEvent,
  AuditEventInput,
  AuthenticateResult,
  OpenRequestResult,
} from "./account-types";
import { NOTIFY_SCHEMA, Notifier, type RequestedNotice } from "./notify/notifier";
import type { WebhookFormat } from "./notify/webhook-body";
import type { AgentIdentity } from "./request-types";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS account (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    operator_email TEXT NOT NULL,
    webhook_url TEXT,
    webhook_secret TEXT,
    created_at INTEGER NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS agents (
    agent_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT,
    key_hash TEXT NOT NULL,
    ping_endpoint TEXT,
    created_at INTEGER NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS active_requests (
    request_id TEXT PRIMARY KEY,
    user_code TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    type TEXT NOT NULL,
    request_id TEXT,
    agent_id TEXT,
    actor TEXT,
    detail TEXT
  )`,
  "CREATE INDEX IF NOT EXISTS audit_by_time ON audit (at)",
  ...NOTIFY_SCHEMA,
];

/** The audit log keeps this many events, newest first; older ones are dropped. */
const AUDIT_LIMIT = 1000;

type AccountRow = {
  account_id: string;
  name: string;
  operator_email: string;
  webhook_url: string | null;
  webhook_secret: string | null;
  created_at: number;
};
type AgentRow = { agent_id: string; name: string; email: string | null; key_hash: string; ping_endpoint: string | null };

export class AccountDO extends DurableObject<Env> {
  /** The outbox and its alarm (durable-objects/notify/notifier.ts). */
  readonly #notifier = new Notifier(this.ctx, this.env, { account: () => this.#account(), audit: (event, now) => this.#record(event, now) });

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      for (const statement of SCHEMA) ctx.storage.sql.exec(statement);
    });
  }

  async create(input: { accountId: string; name: string; operatorEmail: string }): Promise<AccountView> {
    const now = Date.now();
    this.ctx.storage.sql.exec(
      "INSERT INTO account (id, account_id, name, operator_email, created_at) VALUES (1, ?, ?, ?, ?)",
      input.accountId,
      input.name,
      input.operatorEmail,
      now,
    );
    this.#record({ type: "account_created", actor: "admin" }, now);
    return this.#view()!;
  }

  async get(): Promise<AccountView | null> {
    return this.#view();
  }

  /** Setting a webhook URL draws a new signing secret, returned once. */
  async update(input: { operatorEmail?: string; webhookUrl?: string | null; webhookFormat?: WebhookFormat }): Promise<{ account: AccountView; webhookSecret: string | null } | null> {
    if (!this.#account()) return null;
    let webhookSecret: string | null = null;
    const sql = this.ctx.storage.sql;
    this.ctx.storage.transactionSync(() => {
      if (input.operatorEmail !== undefined) sql.exec("UPDATE account SET operator_email = ?", input.operatorEmail);
      if (input.webhookUrl !== undefined) {
        webhookSecret = input.webhookUrl === null ? null : `whsec_${randomHex(32)}`;
        sql.exec("UPDATE account SET webhook_url = ?, webhook_secret = ?", input.webhookUrl, webhookSecret);
      }
      if (input.webhookFormat !== undefined) this.#notifier.setWebhookFormat(input.webhookFormat);
    });
    this.#record({
      type: "account_updated",
      actor: "admin",
      detail: { fields: Object.keys(input).map((key) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)) },
    });
    return { account: this.#view()!, webhookSecret };
  }

  async addAgent(input: {
    agentId: string;
    name: string;
    email: string | null;
    keyHash: string;
    pingEndpoint: string | null;
  }): Promise<AgentIdentity | null> {
    if (!this.#account()) return null;
    this.ctx.storage.sql.exec(
      "INSERT INTO agents (agent_id, name, email, key_hash, ping_endpoint, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      input.agentId,
      input.name,
      input.email,
      input.keyHash,
      input.pingEndpoint,
      Date.now(),
    );
    this.#record({ type: "agent_created", agentId: input.agentId, actor: "admin" });
    return { id: input.agentId, name: input.name, email: input.email };
  }

  /** Deletes the agent at once; returns the user codes of its active requests so they can be ended too. */
  async deleteAgent(agentId: string): Promise<{ reason: "deleted"; activeUserCodes: string[] } | { reason: "not_found" }> {
    const sql = this.ctx.storage.sql;
    const found = sql.exec("SELECT 1 FROM agents WHERE agent_id = ?", agentId).toArray().length > 0;
    if (!found) return { reason: "not_found" };
    const activeUserCodes = this.ctx.storage.transactionSync(() => {
      const codes = sql
        .exec<{ user_code: string }>("SELECT user_code FROM active_requests WHERE agent_id = ?", agentId)
        .toArray()
        .map((row) => row.user_code);
      sql.exec("DELETE FROM agents WHERE agent_id = ?", agentId);
      sql.exec("DELETE FROM active_requests WHERE agent_id = ?", agentId);
      return codes;
    });
    this.#record({ type: "agent_deleted", agentId, actor: "admin" });
    return { reason: "deleted", activeUserCodes };
  }

  async authenticate(agentId: string, keyHash: string): Promise<AuthenticateResult> {
    const row = this.#agentRow(agentId, keyHash);
    const account = this.#account();
    if (!row || !account) return { reason: "invalid_client" };
    return { reason: "ok", agent: identityOf(row), operatorEmail: account.operator_email, pingEndpoint: row.ping_endpoint };
  }

  /**
   * Authenticates the agent and takes one of the account's active-request slots in one step
   * (CONTRACT.md: at most 5 pending or approved requests). Expired slots are freed lazily here,
   * so a lost release can hold a slot only until its request expires.
   */
  async openRequest(input: {
    agentId: string;
    keyHash: string;
    requestId: string;
    userCode: string;
    expiresAt: number;
    detail: Record<string, unknown>;
  }): Promise<OpenRequestResult> {
    const row = this.#agentRow(input.agentId, input.keyHash);
    const account = this.#account();
    if (!row || !account) return { reason: "invalid_client" };
    const agent = identityOf(row);
    const now = Date.now();
    const sql = this.ctx.storage.sql;
    sql.exec("DELETE FROM active_requests WHERE expires_at <= ?", now);
    const active = sql.exec<{ expires_at: number }>("SELECT expires_at FROM active_requests ORDER BY expires_at").toArray();
    if (active.length >= MAX_ACTIVE_REQUESTS_PER_ACCOUNT) {
      this.#record({ type: "request_refused", agentId: agent.id, detail: { reason: "too_many_requests" } }, now);
      return { reason: "too_many_requests", retryAfterSeconds: Math.max(1, Math.ceil((active[0]!.expires_at - now) / 1000)) };
    }
    sql.exec(
      "INSERT INTO active_requests (request_id, user_code, agent_id, expires_at) VALUES (?, ?, ?, ?)",
      input.requestId,
      input.userCode,
      agent.id,
      input.expiresAt,
    );
    this.#record({ type: "requested", requestId: input.requestId, agentId: agent.id, detail: input.detail }, now);
    const webhook = account.webhook_url && account.webhook_secret ? { url: account.webhook_url, secret: account.webhook_secret } : null;
    return { reason: "ok", agent, operatorEmail: account.operator_email, webhook, pingEndpoint: row.ping_endpoint };
  }

  /** Frees a slot without an audit event: issuance drew a user code that was taken, or failed. */
  async releaseRequest(requestId: string): Promise<void> {
    this.ctx.storage.sql.exec("DELETE FROM active_requests WHERE request_id = ?", requestId);
  }

  /** The audit event and the notifications it causes (outbox rows) are written in one transaction. */
  async recordRequestEvent(event: AuditEventInput): Promise<void> {
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      if (event.release && event.requestId) this.ctx.storage.sql.exec("DELETE FROM active_requests WHERE request_id = ?", event.requestId);
      this.#record(event, now);
      this.#notifier.enqueueFor(event, now);
    });
    await this.#notifier.schedule();
  }

  /** A new request's notice (`credential.requested` and the email), once the worker has signed its link. */
  async notifyRequested(notice: RequestedNotice): Promise<void> {
    this.ctx.storage.transactionSync(() => this.#notifier.enqueueRequested(notice, Date.now()));
    await this.#notifier.schedule();
  }

  /** Works the outbox: each due notification is attempted once, then acknowledged, retried or audited. */
  override async alarm(): Promise<void> {
    await this.#notifier.deliverDue();
  }

  async audit(): Promise<AuditEvent[] | null> {
    if (!this.#account()) return null;
    return this.ctx.storage.sql
      .exec<{ at: number; type: string; request_id: string | null; agent_id: string | null; actor: string | null; detail: string | null }>(
        "SELECT * FROM audit ORDER BY seq DESC LIMIT ?",
        AUDIT_LIMIT,
      )
      .toArray()
      .map((row) => ({
        at: new Date(row.at).toISOString(),
        type: row.type as AuditEvent["type"],
        ...(row.request_id ? { request_id: row.request_id } : {}),
        ...(row.agent_id ? { agent_id: row.agent_id } : {}),
        ...(row.actor ? { actor: row.actor } : {}),
        ...(row.detail ? { detail: JSON.parse(row.detail) as Record<string, unknown> } : {}),
      }));
  }

  #record(event: Omit<AuditEventInput, "release">, now = Date.now()): void {
    const sql = this.ctx.storage.sql;
    sql.exec(
      "INSERT INTO audit (at, type, request_id, agent_id, actor, detail) VALUES (?, ?, ?, ?, ?, ?)",
      now,
      event.type,
      event.requestId ?? null,
      event.agentId ?? null,
      event.actor ?? null,
      event.detail ? JSON.stringify(event.detail) : null,
    );
    sql.exec("DELETE FROM audit WHERE seq <= (SELECT MAX(seq) FROM audit) - ?", AUDIT_LIMIT);
  }

  #account(): AccountRow | undefined {
    return this.ctx.storage.sql.exec<AccountRow>("SELECT * FROM account").toArray()[0];
  }

  #agentRow(agentId: string, keyHash: string): AgentRow | null {
    const row = this.ctx.storage.sql.exec<AgentRow>("SELECT * FROM agents WHERE agent_id = ?", agentId).toArray()[0];
    return row && row.key_hash === keyHash ? row : null;
  }


  #view(): AccountView | null {
    const row = this.#account();
    if (!row) return null;
    return {
      account_id: row.account_id,
      name: row.name,
      operator_email: row.operator_email,
      webhook_url: row.webhook_url,
      webhook_format: this.#notifier.webhookFormat(),
      created_at: new Date(row.created_at).toISOString(),
    };
  }
}

const identityOf = (row: AgentRow): AgentIdentity => ({ id: row.agent_id, name: row.name, email: row.email });

function randomHex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
}
