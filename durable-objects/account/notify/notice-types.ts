/**
 * What a notice is about, as the formats (email-message.ts, webhook-body.ts) need it. They import
 * only this file, and account-types.ts imports it too: no type-level circle between the account's
 * types and its formats.
 */
import type { AgentIdentity } from "../../request/request-types";

/** A request as notifications describe it: who asks, for what, until when (never a secret). */
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

/** How webhook events are written: the signed Keyferry JSON, or Slack-compatible `{"text"}`. */
export type WebhookFormat = "keyferry" | "slack";

export type WebhookEventType =
  | "credential.requested"
  | "credential.approved"
  | "credential.denied"
  | "credential.delivered"
  | "credential.expired"
  | "credential.replayed";
