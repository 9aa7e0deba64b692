/**
 * Issuance in one call (bench/README.md, "Cost per handoff"; ./README.md explains it): once the
 * AccountDO has authenticated the agent, this takes a slot within its issuance count
 * (./active-slots.ts), creates the request object, and stores the operator's notice.
 */
import { approvalsRequiredFor } from "../../core/approval-policy";
import type { RequestDetails } from "../request/request-types";
import { summaryOf } from "../request/request-views";
import { identityOf, type AccountRow, type AgentRow } from "./account-rows";
import type { IssueInput, IssueResult } from "./account-types";
import { dropSlot, holdsSlot, takeSlot, type RecordEvent } from "./active-slots";
import { policyOf } from "./approval-policy-row";
import { announceRequestsChanged, consoleViewOf } from "./console-feed";
import { slotHorizonMs } from "./live-slots";
import type { Notifier } from "./notify/notifier";
import type { NewOutboxEntry } from "./notify/outbox";

/** The AccountDO's audit append, with the notifications the event owes carried in its row. */
type RecordOwing = (event: Parameters<RecordEvent>[0], now: number, owed?: NewOutboxEntry[]) => void;

export class Issuance {
  readonly #ctx: DurableObjectState;
  readonly #env: Env;
  readonly #notifier: Notifier;
  /** The AccountDO's audit append (./audit-log.ts). */
  readonly #record: RecordOwing;

  constructor(ctx: DurableObjectState, env: Env, notifier: Notifier, record: RecordOwing) {
    this.#ctx = ctx;
    this.#env = env;
    this.#notifier = notifier;
    this.#record = record;
  }

  /**
   * `row` is the authenticated agent; `passkeyRequired`, whether an operator holds a passkey now:
   * what the approval page is told (decide asks again).
   */
  async issue(account: AccountRow, row: AgentRow, input: IssueInput, passkeyRequired: boolean): Promise<IssueResult> {
    const agent = identityOf(row);
    const now = Date.now();
    const sql = this.#ctx.storage.sql;
    // The policy is read once, here: the request keeps the count it was issued under (README, "Approval policies (N-of-M)").
    const approvalsRequired = approvalsRequiredFor(policyOf(account), input.details.vaultKey);
    const details: RequestDetails = { ...input.details, accountName: account.name, agent, operatorEmail: account.operator_email.trim().toLowerCase(), passkeyRequired, approvalsRequired };
    const summary = summaryOf(details, input.expiresAt);
    const consoleView = consoleViewOf(summary, { publicKey: details.publicKey, encryptionKey: details.encryptionKey }, approvalsRequired);
    // The operator's notice rides on the `requested` row (./notify/owed.ts): stored with it, held by
    // this issuance, and first attempted below, before it answers, once the object exists and the slot is still held.
    const notice = { request: summary, approvalUrl: input.approvalUrl, userCode: details.protocol === "device" ? details.userCode : null };
    const record: RecordEvent = (event, at) => this.#record(event, at, event.type === "requested" ? this.#notifier.enqueueRequested(account, notice, at) : []);
    const refused = this.#ctx.storage.transactionSync(() => takeSlot(sql, input, { agentId: agent.id, consoleView }, now, slotHorizonMs(this.#env), record));
    if (refused) return refused;
    const noticeEntries = this.#notifier.setAside(input.requestId);

    const requestObject = this.#env.REQUESTS.get(this.#env.REQUESTS.idFromName(input.userCode));
    const created = await requestObject.create({ details, handleTag: input.handleTag, expiresAt: input.expiresAt, interval: input.interval });
    if (created.reason === "collision") {
      // The user code is taken by a live request: the worker draws another, which is a new issuance.
      this.#ctx.storage.transactionSync(() => {
        dropSlot(sql, input.requestId);
        this.#notifier.withdraw(noticeEntries);
      });
      return { reason: "collision" };
    }
    // The slot re-checked: a delete of the agent while the object was made took it (and its
    // revocation could not reach an object that did not exist yet), so the request ends here.
    const held = this.#ctx.storage.transactionSync(() => {
      if (holdsSlot(sql, input.requestId, Date.now())) return true;
      this.#notifier.withdraw(noticeEntries);
      return false;
    });
    if (!held) {
      await requestObject.revoke();
      return { reason: "invalid_client" };
    }
    announceRequestsChanged(this.#ctx);
    this.#notifier.resume(noticeEntries);
    await this.#notifier.sendFirst(account);
    return { reason: "ok", agent, operatorEmail: account.operator_email, pingEndpoint: row.ping_endpoint };
  }
}
