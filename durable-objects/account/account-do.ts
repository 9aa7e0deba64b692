/**
 * One Durable Object per account, addressed by `idFromName(account_id)`: the account's settings,
 * its agents and their API-key hashes, and the audit log, whose `requested` rows are the active-request slots
 * (durable-objects/account/README.md documents the tables).
 */
import { DurableObject } from "cloudflare:workers";
import { readAudit } from "./audit-log";
import { agentWithKey, agentsOf, clearRevocations, deleteAgentRows, hasAgent, insertAgent, revocationsOwed, type NewAgent } from "./agents";
import { Issuance } from "./issuance";
import type {
  Account,
  AccountResult,
  AddAgentResult,
  AuditEventInput,
  AuditResult,
  AuthenticateResult,
  IssueInput,
  IssueResult,
  UpdateAccountResult,
} from "./account-types";
import { ACCOUNT_SCHEMA, ACCOUNT_SCHEMA_VERSION, accountSchemaVersion, migrateAccount } from "./account-schema";
import { answerClose } from "../request/wait-channel";
import {
  acceptConsoleSocket,
  announceRequestsChanged,
  closeOperatorSockets,
  pendingConsoleRequest,
  pendingConsoleRequests,
  settleConsoleView,
  type ConsoleRequest,
} from "./console-feed";
import { Notifier } from "./notify/notifier";
import { slotHorizonMs } from "./live-slots";
import type { NewOutboxEntry } from "./notify/outbox";
import { accountView, identityOf, type AccountRow, type AgentRow } from "./account-rows";
import { writeSettings, type AccountSettingsInput } from "./account-settings";
import type { AgentIdentity } from "../request/request-types";
import type { AuthenticationResponseJSON, RegistrationResponseJSON, RelyingParty } from "../../core/webauthn";
import { Operators, type SessionOpening } from "./operators";
import { PushSubscriptions } from "./push-subscriptions";
import type { PushSubscriptionRecord } from "./notify/web-push";
import type {
  AddOperatorResult,
  BeginEnrolmentResult,
  CompleteEnrolmentResult,
  DecisionPasskeys,
  ListOperatorsResult,
  NewOperatorInput,
  Operator,
  OperatorPasskey,
  RemoveOperatorResult,
  SessionResult,
  SignInResult,
} from "./operator-types";

export class AccountDO extends DurableObject<Env> {
  readonly #operators = new Operators(this.ctx.storage);
  readonly #push = new PushSubscriptions(this.ctx.storage.sql);
  /** The outbox and its alarm (durable-objects/account/notify/notifier.ts). */
  readonly #notifier = new Notifier(this.ctx, this.env);
  /**
   * Whether the tables exist. The constructor only reads: an object reached for an account that
   * does not exist (a mistyped ID in the admin API) writes nothing and leaves no storage behind.
   * The schema is made on the first write, as cloudflare/agents does.
   */
  #schemaReady: boolean;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const version = accountSchemaVersion(ctx.storage.sql);
    // An account made by an earlier version is brought up to date before its first call.
    if (version > 0 && version < ACCOUNT_SCHEMA_VERSION) ctx.storage.transactionSync(() => migrateAccount(ctx.storage.sql, version));
    this.#schemaReady = version > 0;
  }

  #ensureSchema(): void {
    if (this.#schemaReady) return;
    this.ctx.storage.transactionSync(() => {
      for (const statement of ACCOUNT_SCHEMA) this.ctx.storage.sql.exec(statement);
    });
    this.#schemaReady = true;
  }

  /** The account ID is freshly drawn by the worker, so the object is new; `owner` is its first operator. */
  async create(input: { accountId: string; name: string; operatorEmail: string; owner: NewOperatorInput }): Promise<Account> {
    this.#ensureSchema();
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      this.ctx.storage.sql.exec(
        "INSERT INTO account (id, account_id, name, operator_email, created_at) VALUES (1, ?, ?, ?, ?)",
        input.accountId,
        input.name,
        input.operatorEmail,
        now,
      );
      this.#record({ type: "account_created", actor: "admin" }, now);
      this.#addOperator(input.owner, "admin", now);
    });
    await this.#notifier.sendDue(this.#account());
    return accountView(this.#account()!);
  }

  // ---- Operators and passkeys (./operators.ts; README, "Operators and passkeys") ----------------

  /** The operator (or a re-invitation of an existing one), its invitation and the invitation's email, in one transaction. */
  async addOperator(input: NewOperatorInput, by: string): Promise<AddOperatorResult> {
    if (!this.#account()) return { reason: "not_found" };
    const added = this.ctx.storage.transactionSync(() => this.#addOperator(input, by, Date.now()));
    if (!added) return { reason: "email_taken" };
    await this.#notifier.sendDue(this.#account());
    return { reason: "created", operator: added };
  }

  async operatorByEmail(email: string): Promise<Operator | null> {
    return this.#account() ? this.#operators.byEmail(email) : null;
  }

  async listOperators(): Promise<ListOperatorsResult> {
    if (!this.#account()) return { reason: "not_found" };
    return { reason: "found", operators: this.#operators.list() };
  }

  async removeOperator(operatorId: string, by: string): Promise<RemoveOperatorResult> {
    if (!this.#account()) return { reason: "not_found" };
    const removed = this.ctx.storage.transactionSync(() => {
      this.#push.removeOperator(operatorId);
      return this.#operators.remove(operatorId);
    });
    if (!removed) return { reason: "not_found" };
    this.#record({ type: "operator_removed", actor: by, detail: { operator_id: operatorId, email: removed.email } });
    closeOperatorSockets(this.ctx, operatorId);
    return { reason: "removed" };
  }

  /** A browser of a live operator subscribes to pushes (README, "Push to your phone"); null when it has the most. */
  async addPushSubscription(operatorId: string, subscription: PushSubscriptionRecord, subscriptionId: string): Promise<string | null> {
    if (!this.#account() || !this.#operators.byId(operatorId)) return null;
    return this.#push.add(operatorId, subscription, subscriptionId, Date.now());
  }

  async removePushSubscription(operatorId: string, subscriptionId: string): Promise<boolean> {
    return this.#account() ? this.#push.remove(operatorId, subscriptionId) : false;
  }

  async beginEnrolment(operatorId: string, invitationHash: string, challenge: string): Promise<BeginEnrolmentResult> {
    return this.#account() ? this.#operators.beginEnrolment(operatorId, invitationHash, challenge) : { reason: "invalid_invitation" };
  }

  async completeEnrolment(input: { operatorId: string; invitationHash: string; response: RegistrationResponseJSON; party: RelyingParty; session: SessionOpening }): Promise<CompleteEnrolmentResult> {
    if (!this.#account()) return { reason: "invalid_invitation" };
    const result = await this.#operators.completeEnrolment(input.operatorId, input.invitationHash, input.response, input.party, input.session);
    if (result.reason === "enrolled") this.#record({ type: "passkey_enrolled", actor: result.operator.email, detail: { operator_id: input.operatorId, passkey_id: result.passkeyId } });
    return result;
  }

  async signIn(input: { operatorId: string; response: AuthenticationResponseJSON; challenge: { value: string; expiresAt: number }; party: RelyingParty; session: SessionOpening }): Promise<SignInResult> {
    if (!this.#account()) return { reason: "refused", detail: "no such account" };
    return this.#operators.signIn(input.operatorId, input.response, input.challenge, input.party, input.session);
  }

  async consoleSession(sessionHash: string): Promise<SessionResult> {
    return this.#account() ? this.#operators.session(sessionHash) : { reason: "invalid_session" };
  }

  async endConsoleSession(sessionHash: string): Promise<void> {
    if (this.#account()) this.#operators.endSession(sessionHash);
  }

  /** For the RequestDO: whether decisions need a passkey, and which. */
  async decisionPasskeys(): Promise<DecisionPasskeys> {
    return this.#account() ? this.#operators.decisionPasskeys() : { required: false, credentials: [] };
  }

  /** For the RequestDO: a passkey of this account and its operator, or null (another account's, or removed). */
  async operatorPasskey(credentialId: string): Promise<OperatorPasskey | null> {
    return this.#account() ? this.#operators.passkey(credentialId) : null;
  }

  async passkeyUsed(credentialId: string, counter: number): Promise<void> {
    if (this.#account()) this.#operators.recordUse(credentialId, counter);
  }

  #addOperator(input: NewOperatorInput, by: string, now: number): Operator | null {
    const operator = this.#operators.add(input.operator, input.invitationHash, input.invitationExpiresAt);
    if (!operator) return null;
    const invitation = this.#notifier.enqueueEmail(operator.email, input.invitationEmail.subject, input.invitationEmail.text, now);
    this.#record({ type: "operator_invited", actor: by, detail: { operator_id: operator.operatorId, email: operator.email, role: operator.role } }, now, invitation);
    return operator;
  }

  async get(): Promise<AccountResult> {
    const row = this.#account();
    return row ? { reason: "found", account: accountView(row) } : { reason: "not_found" };
  }

  /** Settings (./account-settings.ts); a new webhook URL's signing secret is returned once. */
  async update(input: AccountSettingsInput, actor = "admin"): Promise<UpdateAccountResult> {
    if (!this.#account()) return { reason: "not_found" };
    const webhookSecret = this.ctx.storage.transactionSync(() => writeSettings(this.ctx.storage.sql, input));
    this.#record({
      type: "account_updated",
      actor,
      detail: { fields: Object.keys(input).map((key) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)) },
    });
    return { reason: "updated", account: accountView(this.#account()!), webhookSecret };
  }

  async addAgent(input: NewAgent, actor = "admin"): Promise<AddAgentResult> {
    if (!this.#account()) return { reason: "not_found" };
    insertAgent(this.ctx.storage.sql, input, Date.now());
    this.#record({ type: "agent_created", agentId: input.agentId, actor });
    return { reason: "created", agent: { id: input.agentId, name: input.name, email: input.email } };
  }

  /**
   * Deletes the agent at once and returns the user codes of its requests still to be revoked. The
   * codes stay listed until `revocationsDone`, so a delete whose revocations failed is finished by
   * its retry instead of answering "no such agent" with requests left live (./agents.ts).
   */
  async deleteAgent(agentId: string, actor = "admin"): Promise<{ reason: "deleted"; activeUserCodes: string[]; purgeVault: boolean } | { reason: "not_found" }> {
    if (!this.#schemaReady) return { reason: "not_found" };
    const sql = this.ctx.storage.sql;
    if (hasAgent(sql, agentId)) {
      this.ctx.storage.transactionSync(() => {
        deleteAgentRows(sql, agentId, Date.now());
        this.#record({ type: "agent_deleted", agentId, actor });
      });
      announceRequestsChanged(this.ctx);
    }
    const owed = revocationsOwed(sql, agentId);
    return owed ? { reason: "deleted", ...owed } : { reason: "not_found" };
  }

  /** The worker revoked these requests of a deleted agent (and purged its vault). */
  async revocationsDone(agentId: string, userCodes: string[], vaultPurged: boolean): Promise<void> {
    if (this.#schemaReady) clearRevocations(this.ctx.storage.sql, agentId, userCodes, vaultPurged);
  }

  async authenticate(agentId: string, keyHash: string): Promise<AuthenticateResult> {
    const row = this.#agentRow(agentId, keyHash);
    const account = this.#account();
    if (!row || !account) return { reason: "invalid_client" };
    return { reason: "ok", agent: identityOf(row), operatorEmail: account.operator_email, pingEndpoint: row.ping_endpoint };
  }

  /** Issuance in one call (./issuance.ts): authenticates the agent, takes a slot, creates the request object, stores the notice. */
  async issue(input: IssueInput): Promise<IssueResult> {
    const row = this.#agentRow(input.agentId, input.keyHash);
    const account = this.#account();
    if (!row || !account) return { reason: "invalid_client" };
    const issuance = new Issuance(this.ctx, this.env, this.#notifier, (event, at, owed) => this.#record(event, at, owed, true));
    return issuance.issue(account, row, input, this.#operators.decisionPasskeys().required);
  }

  /** The audit event and the notifications it causes (carried in its row) are written in one transaction. */
  async recordRequestEvent(event: AuditEventInput): Promise<void> {
    return this.#recordRequestEvent(event);
  }

  /**
   * For the RequestDO: a decision under the email binding, recorded only if no operator of this
   * account holds a passkey, checked here in the same call (README, "Operators and passkeys").
   */
  async recordEmailDecision(event: AuditEventInput): Promise<{ reason: "recorded" } | { reason: "passkey_required" }> {
    if (this.#account() && this.#operators.decisionPasskeys().required) return { reason: "passkey_required" };
    await this.#recordRequestEvent(event);
    return { reason: "recorded" };
  }

  async #recordRequestEvent(event: AuditEventInput): Promise<void> {
    this.#ensureSchema();
    const now = Date.now();
    const account = this.#account();
    const consoleChanged = this.ctx.storage.transactionSync(() => {
      // The operator's look-up, carried by the decision that followed it: one call and one row
      // instead of two of each; the log reads it back as its own `looked_up` event (./audit-log.ts).
      const { lookedUp } = event;
      const owed = account ? this.#notifier.enqueueFor(account, event, now) : [];
      this.#record(lookedUp ? { ...event, detail: { ...event.detail, looked_up: { at: lookedUp.at, ...lookedUp.detail } } } : event, now, owed);
      return settleConsoleView(this.ctx.storage.sql, event, now);
    });
    if (consoleChanged) announceRequestsChanged(this.ctx);
    await this.#notifier.sendDue(account);
  }

  /** The console's pending requests (./console-feed.ts); none for an account that does not exist. */
  async consoleRequests(): Promise<{ reason: "found"; requests: ConsoleRequest[] } | { reason: "not_found" }> {
    if (!this.#account()) return { reason: "not_found" };
    return { reason: "found", requests: pendingConsoleRequests(this.ctx.storage.sql, Date.now(), slotHorizonMs(this.env)) };
  }

  /** One pending request of this account, and the user code its object is addressed by. */
  async consoleRequest(requestId: string): Promise<{ reason: "found"; request: ConsoleRequest; userCode: string } | { reason: "not_found" }> {
    const found = this.#schemaReady ? pendingConsoleRequest(this.ctx.storage.sql, requestId, Date.now(), slotHorizonMs(this.env)) : null;
    return found ? { reason: "found", request: found.view, userCode: found.userCode } : { reason: "not_found" };
  }

  async listAgents(): Promise<{ reason: "found"; agents: (AgentIdentity & { createdAt: number })[] } | { reason: "not_found" }> {
    if (!this.#account()) return { reason: "not_found" };
    return { reason: "found", agents: agentsOf(this.ctx.storage.sql) };
  }

  /** The console's live socket (./console-feed.ts); the worker checked the operator's session. */
  override async fetch(request: Request): Promise<Response> {
    return acceptConsoleSocket(this.ctx, request);
  }

  /** Console sockets only listen. */
  override async webSocketMessage(): Promise<void> {}

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    answerClose(ws, code);
  }

  override async webSocketError(): Promise<void> {}

  /** Works the outbox: each due notification is attempted once, then acknowledged, retried or audited. */
  override async alarm(): Promise<void> {
    this.#ensureSchema();
    await this.#notifier.deliverDue(this.#account());
  }

  async audit(): Promise<AuditResult> {
    if (!this.#account()) return { reason: "not_found" };
    return { reason: "found", events: readAudit(this.ctx.storage.sql) };
  }

  /**
   * Appends an audit event (./audit-log.ts: noise is counted apart and never evicts a decision),
   * carrying in its row the notifications it owes (./notify/owed.ts).
   */
  #record(event: Omit<AuditEventInput, "lookedUp">, now = Date.now(), owed: NewOutboxEntry[] = [], byIssuance = false): void {
    this.#ensureSchema();
    this.#notifier.record(event, now, owed, byIssuance);
  }

  #account(): AccountRow | undefined {
    if (!this.#schemaReady) return undefined;
    return this.ctx.storage.sql.exec<AccountRow>("SELECT * FROM account").toArray()[0];
  }

  #agentRow(agentId: string, keyHash: string): AgentRow | null {
    return this.#schemaReady ? agentWithKey(this.ctx.storage.sql, agentId, keyHash) : null;
  }
}
