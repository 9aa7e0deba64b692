import type { ApprovalPolicy, ApprovalProgress } from "../../core/approval-policy";
import type { DecisionActorBody } from "../../core/wire";
import type { RequestSummary, WebhookFormat } from "./notify/notice-types";
import type { AgentIdentity, PingTarget, RequestDetails } from "../request/request-types";

export type { RequestSummary } from "./notify/notice-types";

export type AuditEventType =
  | "account_created"
  | "account_updated"
  | "agent_created"
  | "agent_deleted"
  | "requested"
  | "request_refused"
  | "notification_failed"
  /** The notice cap's window ended with notices held back: this row carries their summary (notify/notice-cap.ts). */
  | "notices_held_back"
  /** Notifications owed when the account's tables moved to version 6, carried here (account-schema.ts). */
  | "notifications_moved"
  | "looked_up"
  | "attempt_failed"
  | "locked"
  /** A passkey decision on a request another browser had claimed (before the decision's own event). */
  | "claim_taken_over"
  /** One more operator approved a request that needs several (README, "Approval policies (N-of-M)"); not yet enough. */
  | "partially_approved"
  | "approved"
  | "denied"
  | "delivered"
  /** A bound request's kept answer served again to its key within the grace window. */
  | "redelivered"
  | "expired"
  | "replay_detected"
  | "operator_invited"
  | "operator_removed"
  | "passkey_enrolled";

/** Who made a decision (README, "Operators and passkeys"): stored and shown as is. */
export type DecisionActor = DecisionActorBody;

export interface AuditEventInput {
  type: AuditEventType;
  requestId?: string;
  agentId?: string;
  /** "admin", an email, or a decision's actor. */
  actor?: string | DecisionActor;
  detail?: Record<string, unknown>;
  /** What the request is, for the notifications this event causes (never a secret). */
  request?: RequestSummary;
  /** CIBA ping mode: set on a decision, so the agent can be told (CIBA Core §10.2). */
  ping?: PingTarget;
  /** The operator's look-up that came before a decision, stored in its row and read back as a `looked_up` event. */
  lookedUp?: { at: number; detail: Record<string, string> };
  /** `partially_approved`: who has approved and the digest later approvers sign, for the console's list (not the log). */
  progress?: ApprovalProgress;
  /** `requested`: the slot this row is (./live-slots.ts); the console's summary as JSON (./console-feed.ts). */
  slot?: { userCode: string; expiresAt: number; consoleView: string };
}

/** An audit event as stored; the worker renders it (core/wire.ts `AuditEventBody`). */
export interface AuditRecord {
  /** Unix ms. */
  at: number;
  type: AuditEventType;
  requestId?: string;
  agentId?: string;
  actor?: string | DecisionActor;
  detail?: AuditDetail;
}

/**
 * A stored event's `detail`, read back from JSON. Details are flat (IP, user agent, counts, field
 * names); a concrete type, unlike `unknown`, survives the RPC result's serializable check.
 */
export type AuditDetail = Record<string, AuditScalar | AuditScalar[] | Array<Record<string, AuditScalar>>>;
type AuditScalar = string | number | boolean | null;

/** The account's settings; the webhook secret is never read back. */
export interface Account {
  accountId: string;
  name: string;
  operatorEmail: string;
  webhookUrl: string | null;
  webhookFormat: WebhookFormat;
  /** Unix ms. */
  createdAt: number;
  /** How many distinct operators must approve which requests (README, "Approval policies (N-of-M)"). */
  approvalPolicy: ApprovalPolicy;
}

/** Every admin RPC but `create` names an account that may not exist (a mistyped ID). */
export type AccountResult = { reason: "found"; account: Account } | { reason: "not_found" };
/** `webhookSecret`: drawn when a webhook URL was set, returned once; otherwise null. */
export type UpdateAccountResult = { reason: "updated"; account: Account; webhookSecret: string | null } | { reason: "not_found" };
export type AddAgentResult = { reason: "created"; agent: AgentIdentity } | { reason: "not_found" };
export type AuditResult = { reason: "found"; events: AuditRecord[] } | { reason: "not_found" };

/** Issuance (AccountDO.issue): what the worker drew and signed; the account adds who asks. */
export interface IssueInput {
  agentId: string;
  keyHash: string;
  requestId: string;
  userCode: string;
  expiresAt: number;
  interval: number;
  /** The handle's tag (worker/handles.ts): the request object keeps it, never the handle. */
  handleTag: string;
  details: Omit<RequestDetails, "accountName" | "agent" | "operatorEmail" | "approvalsRequired">;
  /** The signed one-click link for the operator's notice (only the worker holds the key). */
  approvalUrl: string | null;
  /** The `requested` event's detail. */
  auditDetail: Record<string, unknown>;
}

export type IssueResult =
  | { reason: "ok"; agent: AgentIdentity; operatorEmail: string; pingEndpoint: string | null }
  /** The key is unknown, or the agent was deleted while its request was being made (the request is revoked). */
  | { reason: "invalid_client" }
  /** The user code is held by a live request: draw another. */
  | { reason: "collision" }
  /** `cause`: the account's active requests are at their cap, or the agent asked too often this minute. */
  | { reason: "too_many_requests"; retryAfterSeconds: number; cause: "active_requests" | "rate_limited" };

export type AuthenticateResult =
  | { reason: "ok"; agent: AgentIdentity; operatorEmail: string; pingEndpoint: string | null }
  | { reason: "invalid_client" };
