/**
 * The AccountDO's `account` and `agents` rows as stored (durable-objects/account/README.md), and
 * the camelCase values its RPC methods return for them.
 */
import type { Account } from "./account-types";
import { policyOf } from "./approval-policy-row";
import { webhookFormatOf, type NotifyAccount } from "./notify/notifier";
import type { AgentIdentity } from "../request/request-types";

/** `approval_policy`: JSON, NULL for one approval (./approval-policy-row.ts). */
export type AccountRow = NotifyAccount & { created_at: number; approval_policy: string | null };
export type AgentRow = { agent_id: string; name: string; email: string | null; key_hash: string; ping_endpoint: string | null };

/** Everything but the webhook secret, which is shown once, by `update`. */
export function accountView(row: AccountRow): Account {
  return {
    accountId: row.account_id,
    name: row.name,
    operatorEmail: row.operator_email,
    webhookUrl: row.webhook_url,
    webhookFormat: webhookFormatOf(row),
    createdAt: row.created_at,
    approvalPolicy: policyOf(row),
  };
}

export const identityOf = (row: AgentRow): AgentIdentity => ({ id: row.agent_id, name: row.name, email: row.email });

export function randomHex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
}
