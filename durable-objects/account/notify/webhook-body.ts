/**
 * Webhook event bodies (README, "Webhooks into a chat tool"): the signed Keyferry JSON, or a
 * Slack-compatible `{"text"}` that Slack, Mattermost, Rocket.Chat, Google Chat and Discord's
 * `/slack` endpoint accept as is. Neither ever carries a credential: a RequestSummary holds none.
 */
import type { AuditEventType, RequestSummary } from "../account-types";
import { oneLine } from "./email-message";

export type WebhookFormat = "keyferry" | "slack";

export type WebhookEventType =
  | "credential.requested"
  | "credential.approved"
  | "credential.denied"
  | "credential.delivered"
  | "credential.expired"
  | "credential.replayed";

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

export interface WebhookEvent {
  id: string;
  type: WebhookEventType;
  createdAt: number;
  request: RequestSummary;
  accountName: string;
  /** `credential.requested`: the one-click link (absent when no PUBLIC_BASE_URL is set). */
  approvalUrl?: string | null;
  /** Who decided (`approved`, `denied`), or `locked` after too many failed attempts. */
  decidedBy?: string | null;
  /** `credential.replayed`: where the replayed poll came from. */
  caller?: { ip?: unknown; user_agent?: unknown } | null;
}

export function webhookBody(format: WebhookFormat, event: WebhookEvent): string {
  return format === "slack" ? JSON.stringify({ text: slackText(event) }) : JSON.stringify(keyferryBody(event));
}

function keyferryBody(event: WebhookEvent): Record<string, unknown> {
  const { request } = event;
  return {
    id: event.id,
    type: event.type,
    created_at: new Date(event.createdAt).toISOString(),
    request: {
      id: request.requestId,
      agent: request.agent,
      account_id: request.accountId,
      description: request.description,
      vault_key: request.vaultKey,
      expires_at: new Date(request.expiresAt).toISOString(),
      ...(request.bindingMessage ? { binding_message: request.bindingMessage } : {}),
    },
    ...(event.type === "credential.requested" && event.approvalUrl ? { approval_url: event.approvalUrl } : {}),
    ...(event.decidedBy ? { decided_by: event.decidedBy } : {}),
    ...(event.caller ? { caller: { ip: String(event.caller.ip ?? ""), user_agent: String(event.caller.user_agent ?? "") } } : {}),
  };
}

/**
 * Slack mrkdwn: `&`, `<` and `>` are the only control characters (api.slack.com, "Escaping text"),
 * so escaping them keeps an agent's strings from forming links or `<!channel>` mentions.
 */
const escape = (text: string, max = 200) => oneLine(text, max).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function slackText(event: WebhookEvent): string {
  const { request } = event;
  const agent = escape(request.agent.name, 80);
  const key = `\`${request.vaultKey}\``;
  switch (event.type) {
    case "credential.requested": {
      const minutes = Math.max(1, Math.round((request.expiresAt - event.createdAt) / 60_000));
      const link = event.approvalUrl ? `: ${event.approvalUrl}` : " (no approval link: PUBLIC_BASE_URL is not set)";
      return [
        `${agent} asks for ${key}${link}`,
        `> ${escape(request.description)}`,
        ...(request.bindingMessage ? [`> Binding message: ${escape(request.bindingMessage, 64)}`] : []),
        `Account ${escape(event.accountName, 80)} (${request.accountId}) · agent ${request.agent.id} · about ${minutes} min left · opening the link decides nothing`,
      ].join("\n");
    }
    case "credential.approved":
      return `↳ ${key} for ${agent}: approved by ${escape(event.decidedBy ?? "the operator", 120)}`;
    case "credential.denied":
      return `↳ ${key} for ${agent}: ${event.decidedBy === "locked" ? "denied (too many failed attempts)" : `denied by ${escape(event.decidedBy ?? "the operator", 120)}`}`;
    case "credential.delivered":
      return `↳ ${key} for ${agent}: delivered`;
    case "credential.expired":
      return `↳ ${key} for ${agent}: expired without being delivered`;
    case "credential.replayed":
      return `⚠ ${key} for ${agent}: replayed: its delivered code was polled again from ${escape(String(event.caller?.ip ?? "an unknown address"), 64)}. Someone else may hold it.`;
  }
}

/** What the one notice sent in place of those held back by the cap says (./notice-cap.ts). */
export function summaryText(accountId: string, count: number, since: number, until: number): string {
  const many = count === 1 ? " was" : "s were";
  return `${count} more Keyferry notification${many} held back for account ${accountId} between ${new Date(since).toISOString()} and ${new Date(until).toISOString()}, because too many came at once. The account's audit log has every request.`;
}

export function summaryBody(format: WebhookFormat, id: string, accountId: string, count: number, since: number, until: number): string {
  if (format === "slack") return JSON.stringify({ text: summaryText(accountId, count, since, until) });
  return JSON.stringify({
    id,
    type: "notifications.summarized",
    created_at: new Date(until).toISOString(),
    account_id: accountId,
    held_back: count,
    since: new Date(since).toISOString(),
    until: new Date(until).toISOString(),
  });
}
