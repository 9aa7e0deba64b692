/**
 * The operator's notification email, as a MIME message for the `send_email` binding. Agent-given
 * text (names, description) goes only in the base64 body, never in a header.
 */
import { formatUserCode } from "../../core/user-code";
import type { RequestDetails } from "../../durable-objects/request-types";

export interface NotificationContent {
  details: RequestDetails;
  expiresAt: number;
  approvalUrl: string;
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
const oneLine = (text: string, max = 200) => text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, " ").slice(0, max);

export function notificationText({ details, expiresAt, approvalUrl, userCode }: NotificationContent, now = Date.now()): string {
  const minutes = Math.max(1, Math.round((expiresAt - now) / 60_000));
  const agent = details.agent;
  return [
    `An agent is asking you for a credential through Keyferry.`,
    ``,
    `Agent:       ${oneLine(agent.name)}${agent.email ? ` <${oneLine(agent.email)}>` : ""} (${agent.id})`,
    `Account:     ${details.accountId}`,
    `Wants:       ${oneLine(details.description)}`,
    `Vault key:   ${details.vaultKey}`,
    ...(details.bindingMessage ? [`Binding message: ${oneLine(details.bindingMessage)}`] : []),
    ...(userCode ? [`Code:        ${formatUserCode(userCode)}`] : []),
    `Time left:   about ${minutes} minute${minutes === 1 ? "" : "s"} (until ${new Date(expiresAt).toISOString()})`,
    ``,
    `Review and approve or deny (opening the link decides nothing):`,
    approvalUrl,
    ``,
    `If you did not expect this, ignore it: the request expires by itself and nothing is shared.`,
  ].join("\r\n");
}

export function notificationMime(from: string, to: string, content: NotificationContent, now = Date.now()): string {
  const domain = from.split("@")[1] ?? "keyferry.local";
  const messageId = `<${crypto.randomUUID()}@${domain}>`;
  return [
    `From: Keyferry <${from}>`,
    `To: <${to}>`,
    `Subject: Credential request from an agent (${content.details.vaultKey})`,
    `Message-ID: ${messageId}`,
    `Date: ${new Date(now).toUTCString()}`,
    `MIME-Version: 1.0`,
    `Auto-Submitted: auto-generated`,
    `Content-Type: text/plain; charset=utf-8`,
    `Content-Transfer-Encoding: base64`,
    ``,
    base64Utf8(notificationText(content, now)),
  ].join("\r\n");
}
