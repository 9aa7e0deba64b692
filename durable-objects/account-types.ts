import type { AgentIdentity, PingTarget } from "./request-types";

export type AuditEventType =
  | "account_created"
  | "account_updated"
  | "agent_created"
  | "agent_deleted"
  | "requested"
  | "request_refused"
  | "notification_failed"
  | "looked_up"
  | "attempt_failed"
  | "locked"
  | "approved"
  | "denied"
  | "delivered"
  | "expired"
  | "replay_detected";

export interface AuditEventInput {
  type: AuditEventType;
  requestId?: string;
  agentId?: string;
  actor?: string;
  detail?: Record<string, unknown>;
  /** The request is finished: free its active slot. */
  release?: boolean;
  /** What the request is, for the notifications this event causes (never a secret). */
  request?: RequestSummary;
  /** CIBA ping mode: set on a decision, so the agent can be told (CIBA Core §10.2). */
  ping?: PingTarget;
}

/** A request as notifications describe it: who asks, for what, until when. */
export interface RequestSummary {
  requestId: string;
  accountId: string;
  agent: AgentIdentity;
  description: string;
  vaultKey: string;
  expiresAt: number;
  bindingMessage: string | null;
  protocol: "device" | "ciba";
}

/** As the admin API shows it (CONTRACT.md). */
export interface AuditEvent {
  at: string;
  type: AuditEventType;
  request_id?: string;
  agent_id?: string;
  actor?: string;
  detail?: Record<string, unknown>;
}

export interface AccountView {
  account_id: string;
  name: string;
  operator_email: string;
  webhook_url: string | null;
  webhook_format: "keyferry" | "slack";
  created_at: string;
}

export type OpenRequestResult =
  | {
      reason: "ok";
      agent: AgentIdentity;
      /** The account's name: the approval page shows whose request it is. */
      accountName: string;
      operatorEmail: string;
      webhook: { url: string; secret: string } | null;
      /** CIBA ping mode: the agent's registered `backchannel_client_notification_endpoint`. */
      pingEndpoint: string | null;
    }
  | { reason: "invalid_client" }
  /** `cause`: the account's active requests are at their cap, or the agent asked too often this minute. */
  | { reason: "too_many_requests"; retryAfterSeconds: number; cause: "active_requests" | "rate_limited" };

export type AuthenticateResult =
  | { reason: "ok"; agent: AgentIdentity; operatorEmail: string; pingEndpoint: string | null }
  | { reason: "invalid_client" };
