/**
 * Webhook event bodies (README, "Webhooks into a chat tool"): the signed Keyferry JSON, or a
 * Slack-compatible `{"text"}` that Slack, Mattermost, Rocket.Chat, Google Chat and Discord's
 * `/slack` endpoint accept as is. Neither ever carries a credential: a RequestSummary holds none.
 */
import { oneLine } from "./email-message";
import type { HeldBackCounts } from "./notice-cap";
import type { RequestSummary, WebhookEventType, WebhookFormat } from "./notice-types";

export type { WebhookEventType, WebhookFormat } from "./notice-types";

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
  /** `credential.approved` under an approval policy: every approver, in order (`decidedBy` is the last). */
  approvers?: Array<{ operator_id: string; email: string; passkey_id: string; at: string }> | null;
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
    ...(event.approvers ? { approvers: event.approvers } : {}),
    ...(event.caller ? { caller: { ip: String(event.caller.ip ?? ""), user_agent: String(event.caller.user_agent ?? "") } } : {}),
  };
}

/**
 * Agent-supplied text in a chat message, for every dialect the README lists (Slack mrkdwn,
 * Mattermost and Rocket.Chat Markdown, Discord): `&`, `<` and `>` escaped, Slack's only control
 * characters (api.slack.com, "Escaping text"), so no `<!channel>` or `<url|label>`; then the whole
 * string as one code span with its backticks replaced, which none of the Markdown dialects reads
 * into a link, a mention (`@here`, `#channel`) or formatting (`*`, `_`, `~`, `[label](url)`).
 */
export function chatLiteral(text: string, max = 200): string {
  const escaped = oneLine(text, max).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/`/g, "\u02cb").trim();
  return `\`${escaped || "(empty)"}\``;
}

/** Text the deployment's admin or operator set (account name, operator email): Slack's three escapes suffice. */
const escape = (text: string, max = 200) => oneLine(text, max).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function slackText(event: WebhookEvent): string {
  const { request } = event;
  const agent = chatLiteral(request.agent.name, 80);
  const key = `\`${request.vaultKey}\``;
  switch (event.type) {
    case "credential.requested": {
      const minutes = Math.max(1, Math.round((request.expiresAt - event.createdAt) / 60_000));
      const link = event.approvalUrl ? `: ${event.approvalUrl}` : " (no approval link: PUBLIC_BASE_URL is not set)";
      return [
        `${agent} asks for ${key}${link}`,
        `> ${chatLiteral(request.description)}`,
        ...(request.bindingMessage ? [`> Binding message: ${chatLiteral(request.bindingMessage, 64)}`] : []),
        `Account ${escape(event.accountName, 80)} (${request.accountId}) · agent ${request.agent.id} · about ${minutes} min left · opening the link decides nothing`,
      ].join("\n");
    }
    case "credential.approved": {
      const by = event.approvers ? event.approvers.map((a) => a.email).join(", ") : (event.decidedBy ?? "the operator");
      return `↳ ${key} for ${agent}: approved by ${escape(by, 400)}`;
    }
    case "credential.denied":
      return `↳ ${key} for ${agent}: ${event.decidedBy === "locked" ? "denied (too many failed attempts)" : `denied by ${escape(event.decidedBy ?? "the operator", 120)}`}`;
    case "credential.delivered":
      return `↳ ${key} for ${agent}: delivered`;
    case "credential.expired":
      return `↳ ${key} for ${agent}: expired without being delivered`;
    case "credential.replayed":
      return `⚠ ${key} for ${agent}: replayed: its delivered code was polled again from ${chatLiteral(String(event.caller?.ip ?? "an unknown address"), 64)}. Someone else may hold it.`;
  }
}

/** "10 credential.requested, 2 credential.approved": what a summary folded, by event type. */
export function heldBackList(counts: HeldBackCounts): string {
  return Object.entries(counts)
    .map(([type, count]) => `${count} ${type}`)
    .join(", ");
}

const total = (counts: HeldBackCounts) => Object.values(counts).reduce((sum, n) => sum + (n ?? 0), 0);

/** What the one notice sent in place of those held back by the cap says (./notice-cap.ts). */
export function summaryText(accountId: string, counts: HeldBackCounts, since: number, until: number): string {
  const count = total(counts);
  const many = count === 1 ? " was" : "s were";
  return `${count} more Keyferry notification${many} held back for account ${accountId} between ${new Date(since).toISOString()} and ${new Date(until).toISOString()}, because too many came at once: ${heldBackList(counts)}. The account's audit log has every request.`;
}

export function summaryBody(format: WebhookFormat, id: string, accountId: string, counts: HeldBackCounts, since: number, until: number): string {
  if (format === "slack") return JSON.stringify({ text: summaryText(accountId, counts, since, until) });
  return JSON.stringify({
    id,
    type: "notifications.summarized",
    created_at: new Date(until).toISOString(),
    account_id: accountId,
    held_back: total(counts),
    held_back_by_type: counts,
    since: new Date(since).toISOString(),
    until: new Date(until).toISOString(),
  });
}
