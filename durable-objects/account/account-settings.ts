/**
 * The account's settings as `update` changes them (README, "Webhooks into a chat tool" and "Approval policies
 * (N-of-M)"), as one synchronous step of its transaction. Setting a webhook URL draws a new signing
 * secret, returned once.
 */
import type { ApprovalPolicy } from "../../core/approval-policy";
import { randomHex } from "./account-rows";
import { policyColumn } from "./approval-policy-row";
import type { WebhookFormat } from "./notify/notice-types";

export interface AccountSettingsInput {
  operatorEmail?: string;
  webhookUrl?: string | null;
  webhookFormat?: WebhookFormat;
  approvalPolicy?: ApprovalPolicy;
}

/** Writes what `input` names; the new webhook secret, or null when no webhook URL was set. */
export function writeSettings(sql: SqlStorage, input: AccountSettingsInput): string | null {
  let webhookSecret: string | null = null;
  if (input.operatorEmail !== undefined) sql.exec("UPDATE account SET operator_email = ?", input.operatorEmail);
  if (input.webhookUrl !== undefined) {
    webhookSecret = input.webhookUrl === null ? null : `whsec_${randomHex(32)}`;
    sql.exec("UPDATE account SET webhook_url = ?, webhook_secret = ?", input.webhookUrl, webhookSecret);
  }
  if (input.webhookFormat !== undefined) sql.exec("UPDATE account SET webhook_format = ?", input.webhookFormat);
  if (input.approvalPolicy !== undefined) sql.exec("UPDATE account SET approval_policy = ?", policyColumn(input.approvalPolicy));
  return webhookSecret;
}
