import type { JWK } from "jose";
import type { ApprovalProgress } from "../../core/approval-policy";
import type { ConsoleApprovals } from "../account/console-approvals";
import type { RequestState, Tombstone } from "../../core/request-state";
import type { AuthenticationResponseJSON, RelyingParty } from "../../core/webauthn";

export interface AgentIdentity {
  id: string;
  name: string;
  email: string | null;
}

/** What a request is, fixed at creation. Stored as JSON in `request.details`. */
export interface RequestDetails {
  requestId: string;
  userCode: string;
  accountId: string;
  /** The account's name at creation. */
  accountName: string;
  agent: AgentIdentity;
  /** Hash of the API key that made the request: the OAuth token endpoint must see the same client. */
  apiKeyHash: string;
  /** Lower-cased; the operator must type it to look the request up. */
  operatorEmail: string;
  description: string;
  vaultKey: string;
  bindingMessage: string | null;
  protocol: "device" | "ciba";
  /** The agent's own ECDH key: end-to-end mode. */
  publicKey: JWK | null;
  /** The key the credential is encrypted to: `publicKey`, or the request's own key pair. */
  encryptionKey: JWK;
  /** Plain mode: the request's private key as a JWE under the device-code secret. */
  wrappedPrivateKey: string | null;
  /** CIBA ping mode (CIBA Core §10.2): where and with which bearer to say the request was decided. */
  ping: PingTarget | null;
  /** RFC 9449 §10: the thumbprint of the DPoP key every poll must prove; null for an unbound request. */
  dpopJkt: string | null;
  createdAt: number;
  /**
   * How many distinct operators must approve (README, "Approval policies (N-of-M)"), from the
   * account's policy at issuance; absent (a request made before policies) or 1: one.
   */
  approvalsRequired?: number;
  /** The approvals so far of a request that needs several, until the count is met (./approval-progress.ts). */
  progress?: ApprovalProgress;
  /**
   * The look-up that claimed the request (who, from where, when), stored in the claim's own row
   * write and audited as `looked_up` with the decision or expiry that follows: one call to the
   * account instead of two (bench/README.md, "Cost per handoff").
   */
  lookedUp?: { at: number; detail: Record<string, string> };
  /**
   * Whether the account's operators held a passkey when the request was issued: what the approval
   * page is told, without a call to the account per look-up. Absent in a request issued before it
   * (the look-up then asks). The decision itself always asks the account (`establishAuthority`).
   */
  passkeyRequired?: boolean;
}

export interface PingTarget {
  endpoint: string;
  token: string;
  /** Not a secret on its own: polling needs the agent's API key too, which also wraps the payload key. */
  authReqId: string;
}

interface RecordOf<Status extends RequestState["status"], Details> extends RequestState {
  status: Status;
  details: Details;
  /** The handle's HMAC tag (worker/handles.ts): a keyed hash of the handle and its secret. */
  handleTag: string;
}

export type LiveRecord = RecordOf<"pending" | "approved" | "denied", RequestDetails>;
/**
 * What a DPoP-bound delivery keeps through its grace window (README, "Nothing lost to a dropped
 * response"), for a poll by its key whose answer was lost: the payload as delivered and what opens it.
 * Stored as JSON in `request.kept`; only the redelivering poll reads it.
 */
export interface KeptAnswer {
  payload: string;
  publicKey: JWK | null;
  wrappedPrivateKey: string | null;
}

/** A delivered request: its tombstone, and its kept answer while the grace window lasts (null after, or never kept). */
export type DeliveredRecord = RecordOf<"delivered", Tombstone> & { kept: KeptAnswer | null };
/** A request as its object holds it: live, with all it is; or delivered, with only its tombstone (and a kept answer for the window). */
export type RequestRecord = LiveRecord | DeliveredRecord;

/** What the approval page may show of a request. */
export interface RequestView {
  requestId: string;
  userCode: string;
  accountId: string;
  accountName: string;
  operatorEmail: string;
  agent: AgentIdentity;
  description: string;
  vaultKey: string;
  bindingMessage: string | null;
  publicKey: JWK | null;
  encryptionKey: JWK;
  expiresAt: number;
  protocol: "device" | "ciba";
  /** Whether the page should sign the decision with a passkey (RequestDetails.passkeyRequired). */
  passkeyRequired: boolean;
  /** A request that needs several operators only: how many, who has approved, the digest they sign. */
  approvals?: ConsoleApprovals;
}

export type CreateResult = { reason: "created" } | { reason: "collision" };

export type PollResult =
  | { reason: "authorization_pending" | "access_denied" | "expired_token" | "invalid_grant" | "invalid_client" | "invalid_dpop_proof" }
  | { reason: "slow_down"; interval: number }
  | { reason: "delivered"; details: DeliveredDetails; payload: string };

/** What a delivering poll's answer is made from: the tombstone's who-and-what, and what opens the payload. */
export type DeliveredDetails = Tombstone & Omit<KeptAnswer, "payload">;

/**
 * A poll's or a wait's DPoP proof, checked by the worker (core/dpop.ts): whose key signed it, the
 * SHA-256 of its `jti` (a fixed size, whatever the client sent), and until when (Unix ms) a proof
 * of that age is accepted, so how long its `jti` must be remembered (RFC 9449 §11.1).
 */
export interface PollProof {
  jkt: string;
  jti: string;
  until: number;
}

/** Who is calling, for the audit log. */
export interface Actor {
  ip: string;
  userAgent: string;
}

export interface DecideInput {
  /** The approval page's claiming session; null from the console, where only a passkey decides. */
  sessionHash: string | null;
  decision: "approve" | "deny";
  payload: string | null;
  /** base64url SHA-256 of the exact credential string sent (what a passkey challenge committed to). */
  payloadSha256: string | null;
  /** The operator's assertion for a challenge from `challenge`, if any. */
  webauthn: AuthenticationResponseJSON | null;
  party: RelyingParty;
  actor: Actor;
  /** The request the approval token was made for: a token cannot decide a later request under the same user code. */
  requestId: string;
}

/** The return channel's messages (README, "Contract notes": return channel). */
export type WaitMessage = { type: "decided"; status: "approved" | "denied" } | { type: "expired" };

export type LookupResult =
  | { reason: "ok"; view: RequestView }
  | { reason: "not_found" | "locked" | "already_claimed" }
  | { reason: "wrong_email"; locked: boolean };

export type DecideResult =
  | { reason: "approved" | "denied"; details: RequestDetails }
  | { reason: "invalid_token" | "access_denied" }
  /** README, "Approval policies (N-of-M)": one more approval recorded, `approvals` of `required`; the rest, core's refusals. */
  | { reason: "awaiting_approvals"; approvals: number; required: number }
  | { reason: "already_approved" | "credential_required" | "credential_not_expected" }
  | { reason: "policy_needs_passkeys"; required: number }
  /** `enrolled`: the account has a passkey (else the deployment requires one and none is enrolled). */
  | { reason: "passkey_required"; enrolled: boolean };

export type DecisionChallengeResult =
  | { reason: "ok"; challenge: string; allowCredentials: { id: string; transports: string[] }[] }
  | { reason: "invalid_token" }
  /** The account has no passkey: its decisions keep the email binding. */
  | { reason: "not_enrolled" };
