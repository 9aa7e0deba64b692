/**
 * An operator's decision on the RequestDO's request (its `decide` RPC): who decides is established
 * (./decision-authority.ts), core/request-state.ts's `decide` judges, and the decision's state and
 * payload are stored in one row write, then audited and announced on the return channel. Under the
 * email binding the account records the decision in the call that checks the binding.
 */
import * as transitions from "../../core/request-state";
import type { DecideAnswer, RequestState } from "../../core/request-state";
import type { DecisionActor } from "../account/account-types";
import { storeState } from "./request-schema";
import { actorDetail, factsOf } from "./request-views";
import { accountOf, auditEventOf, auditInBackground, lookedUpOf } from "./request-account";
import { decisionActor, establishAuthority, type DecisionChallenges } from "./decision-authority";
import { approvalsOf, approversDetail, forgetApprovals, storePartialApproval } from "./approval-progress";
import { payloadDigest } from "../../core/payload-digest";
import { announce } from "./wait-channel";
import type { DecideInput, DecideResult, LiveRecord } from "./request-types";

export class Decisions {
  readonly #ctx: DurableObjectState;
  readonly #env: Env;
  readonly #challenges: DecisionChallenges;
  /** The object's request unless it is a tombstone, read again after each await. */
  readonly #live: () => LiveRecord | null;

  constructor(ctx: DurableObjectState, env: Env, challenges: DecisionChallenges, live: () => LiveRecord | null) {
    this.#ctx = ctx;
    this.#env = env;
    this.#challenges = challenges;
    this.#live = live;
  }

  /** Approve (with the payload already encrypted to `encryptionKey`) or deny, by a verified person. */
  async decide(input: DecideInput): Promise<DecideResult> {
    const live = this.#live();
    if (!live) return { reason: "invalid_token" };
    // What a later approver under an approval policy signs: the payload exactly as stored and delivered.
    const storedPayloadSha256 = input.payload === null ? null : await payloadDigest(input.payload);
    if (input.webauthn === null && this.#env.REQUIRE_PASSKEY !== "true") {
      // Nothing else runs on this object until the account answered and the state is stored.
      const byEmail = await this.#ctx.blockConcurrencyWhile(() => this.#decideByEmail(input, storedPayloadSha256).catch((error: unknown) => ({ error })));
      if (byEmail && "error" in byEmail) throw byEmail.error;
      if (byEmail) return byEmail;
    }
    const account = accountOf(this.#env, live.details.accountId);
    const { authority, signer } = await establishAuthority(input.webauthn, {
      account,
      challenges: this.#challenges,
      party: input.party,
      requirePasskey: this.#env.REQUIRE_PASSKEY === "true",
    });
    // Read again: the request may have changed while the assertion was checked.
    const record = this.#live();
    if (!record) return { reason: "invalid_token" };
    const { next, answer } = transitions.decide(record, factsOf(record), { ...input, storedPayloadSha256, authority, approvals: approvalsOf(record) }, Date.now());
    if (answer.reason !== "approved" && answer.reason !== "denied" && answer.reason !== "awaiting_approvals") return answer;
    if (signer) this.#ctx.waitUntil(account.passkeyUsed(signer.passkey.credential.credentialId, signer.newCounter).catch(() => console.error("passkey use not recorded")));
    if (answer.reason === "awaiting_approvals") return this.#approvedInPart(record, answer, decisionActor(signer, record.details.operatorEmail, input.actor), input);
    const takenOver = transitions.takesOverClaim(record, { ...input, authority });
    const status = answer.reason;
    this.#store(record, next, status, input.payload);
    const actor = decisionActor(signer, record.details.operatorEmail, input.actor);
    // The claiming look-up is audited with the first event that follows it (the take-over, if any).
    const lookedUp = lookedUpOf(record);
    if (takenOver) auditInBackground(this.#ctx, this.#env, record, { type: "claim_taken_over", ...lookedUp, actor, detail: actorDetail(input.actor) });
    auditInBackground(this.#ctx, this.#env, record, {
      type: status,
      ...(takenOver ? {} : lookedUp),
      actor,
      detail: { ...actorDetail(input.actor), ...(answer.reason === "approved" ? approversDetail(answer.approvers) : {}) },
      // CIBA Core §10.2: the account's outbox pings the agent, durably.
      ...(record.details.ping ? { ping: record.details.ping } : {}),
    });
    // After the commit: the agent's next poll is served at once (README, "Contract notes": the return channel).
    announce(this.#ctx, record.handleTag, { type: "decided", status });
    return { reason: status, details: record.details };
  }

  /**
   * One more approval, not yet enough (README, "Approval policies (N-of-M)"): stored and audited, nothing
   * announced or deliverable. The challenges stay: other operators may be signing the stored digest now.
   */
  #approvedInPart(record: LiveRecord, answer: Extract<DecideAnswer, { reason: "awaiting_approvals" }>, actor: DecisionActor, input: DecideInput): DecideResult {
    const { approvals, required, progress } = answer;
    this.#ctx.storage.transactionSync(() => storePartialApproval(this.#ctx.storage.kv, record, progress, input.payload));
    auditInBackground(this.#ctx, this.#env, record, { type: "partially_approved", actor, detail: { ...actorDetail(input.actor), approvals, required }, progress });
    return { reason: "awaiting_approvals", approvals, required };
  }

  /**
   * A decision under the email binding in one call to the account (bench/README.md, "Cost per
   * handoff"): the account records it only if no operator holds a passkey, checked in that call, so a
   * request issued before the first enrolment still needs the passkey. Null when the binding refuses:
   * the decision is then established like every other, whose answer may be passkey_required instead.
   */
  async #decideByEmail(input: DecideInput, storedPayloadSha256: string | null): Promise<DecideResult | null> {
    const record = this.#live();
    if (!record) return { reason: "invalid_token" };
    // A request under an approval policy keeps its count: the binding cannot approve it (policy_needs_passkeys → null).
    const { next, answer } = transitions.decide(record, factsOf(record), { ...input, storedPayloadSha256, authority: { kind: "email_binding" }, approvals: approvalsOf(record) }, Date.now());
    if (answer.reason !== "approved" && answer.reason !== "denied") return null;
    const status = answer.reason;
    const event = auditEventOf(record, {
      type: status,
      ...lookedUpOf(record),
      actor: decisionActor(null, record.details.operatorEmail, input.actor),
      detail: actorDetail(input.actor),
      ...(record.details.ping ? { ping: record.details.ping } : {}),
    });
    const recorded = await accountOf(this.#env, record.details.accountId).recordEmailDecision(event);
    if (recorded.reason === "passkey_required") return { reason: "passkey_required", enrolled: true };
    this.#store(record, next, status, input.payload);
    announce(this.#ctx, record.handleTag, { type: "decided", status });
    return { reason: status, details: record.details };
  }

  /** State and payload in one row write; a denial forgets partial approvals; the unused challenges go with the decision. */
  #store(record: LiveRecord, next: RequestState, status: "approved" | "denied", payload: string | null): void {
    const { kv } = this.#ctx.storage;
    this.#ctx.storage.transactionSync(() => {
      // A later N-of-M approver sends no payload: the first approver's stays.
      storeState(kv, record, next, status === "approved" && payload !== null ? { payload } : {});
      if (status === "denied") forgetApprovals(kv, record);
      this.#challenges.clear();
    });
  }
}
