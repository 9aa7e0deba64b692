/**
 * The operator's notification emails, as MIME messages for the `send_email` binding: a new request
 * (who asks, what for, the link) and a replayed code. Agent-given text (names, description) goes
 * only in the base64 body, never in a header.
 */
import { formatUserCode } from "../../../core/user-code";
import type { RequestSummary } from "./notice-types";

export interface NotificationContent {
  details: Pick<RequestSummary, "agent" | "accountId" | "description" | "vaultKey" | "bindingMessage">;
  expiresAt: number;
  /** Null when the deployment has no PUBLIC_BASE_URL: a link is never built from a request's Host. */
  approvalUrl: string | null;
  /** Shown for the device flow, where the operator may also type the code. */
  userCode: string | null;
}

function base64Utf8(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/.{1,76}/g, "$&\r\n");
}

/** One line of untrusted text: control characters out, length capped. */
export const oneLine = (text: string, max = 200) => text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, " ").slice(0, max);

function whoAndWhat(details: NotificationContent["details"]): string[] {
  const agent = details.agent;
  return [
    `Agent:       ${oneLine(agent.name)}${agent.email ? ` <${oneLine(agent.email)}>` : ""} (${agent.id})`,
    `Account:     ${details.accountId}`,
    `Wants:       ${oneLine(details.description)}`,
    `Vault key:   ${details.vaultKey}`,
    ...(details.bindingMessage ? [`Binding message: ${oneLine(details.bindingMessage)}`] : []),
  ];
}

export function notificationText({ details, expiresAt, approvalUrl, userCode }: NotificationContent, now = Date.now()): string {
  const minutes = Math.max(1, Math.round((expiresAt - now) / 60_000));
  return [
    `An agent is asking you for a credential through Keyferry.`,
    ``,
    ...whoAndWhat(details),
    ...(userCode ? [`Code:        ${formatUserCode(userCode)}`] : []),
    `Time left:   about ${minutes} minute${minutes === 1 ? "" : "s"} (until ${new Date(expiresAt).toISOString()})`,
    ``,
    ...(approvalUrl
      ? [`Review and approve or deny (opening the link decides nothing):`, approvalUrl]
      : [`(No approval link: this deployment has no PUBLIC_BASE_URL set. Ask its administrator.)`]),
    ``,
    `If you did not expect this, ignore it: the request expires by itself and nothing is shared.`,
  ].join("\r\n");
}

/** README, "Contract notes", replay alarm: a delivered code was polled again. */
export function replayText(details: NotificationContent["details"], caller: { ip?: unknown; user_agent?: unknown }): string {
  return [
    `A credential request that was already delivered was polled again.`,
    `Someone else may hold its code, or the agent has a bug. Either way, consider rotating the credential.`,
    ``,
    ...whoAndWhat(details),
    `Polled from: ${oneLine(String(caller.ip ?? "unknown"))} (${oneLine(String(caller.user_agent ?? "unknown user agent"))})`,
    ``,
    `Nothing was handed out again: the poll was refused.`,
  ].join("\r\n");
}

export function mimeMessage(from: string, to: string, subject: string, text: string, now = Date.now()): string {
  const domain = from.split("@")[1] ?? "keyferry.local";
  return [
    `From: Keyferry <${from}>`,
    `To: <${to}>`,
    `Subject: ${subject}`,
    `Message-ID: <${crypto.randomUUID()}@${domain}>`,
    `Date: ${new Date(now).toUTCString()}`,
    `MIME-Version: 1.0`,
    `Auto-Submitted: auto-generated`,
    `Content-Type: text/plain; charset=utf-8`,
    `Content-Transfer-Encoding: base64`,
    ``,
    base64Utf8(text),
  ].join("\r\n");
}

export function notificationMime(from: string, to: string, content: NotificationContent, now = Date.now()): string {
  return mimeMessage(from, to, `Credential request from an agent (${content.details.vaultKey})`, notificationText(content, now), now);
}
