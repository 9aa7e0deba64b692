import type { AgentIdentity } from "./request-types";

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
  | "expired";

export interface AuditEventInput {
  type: AuditEventType;
  requestId?: string;
  agentId?: string;
  actor?: string;
  detail?: Record<string, unknown>;
  /** The request is finished: free its active slot. */
  release?: boolean;
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
  created_at: string;
}

export type OpenRequestResult =
  | {
      reason: "ok";
      agent: AgentIdentity;
      operatorEmail: string;
      webhook: { url: string; secret: string } | null;
      /** CIBA ping mode: the agent's registered `backchannel_client_notification_endpoint`. */
      pingEndpoint: string | null;
    }
  | { reason: "invalid_client" }
  | { reason: "too_many_requests"; retryAfterSeconds: number };

export type AuthenticateResult =
  | { reason: "ok"; agent: AgentIdentity; operatorEmail: string; pingEndpoint: string | null }
  | { reason: "invalid_client" };
