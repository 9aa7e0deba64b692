/**
 * The account's agents (`agents`: each one's API-key hash, the key itself shown once) and what a
 * deleted agent still needs ended (`pending_revocations`; durable-objects/account/README.md), as
 * synchronous steps of the AccountDO's calls.
 */
import type { AgentIdentity } from "../request/request-types";
import { identityOf, type AgentRow } from "./account-rows";
import { liveSlotsOf } from "./active-slots";

export interface NewAgent {
  agentId: string;
  name: string;
  email: string | null;
  keyHash: string;
  pingEndpoint: string | null;
}

/** What a deleted agent still needs ended: its requests' user codes, and whether its vault is still to purge. */
export type RevocationsOwed = { activeUserCodes: string[]; purgeVault: boolean };

export function insertAgent(sql: SqlStorage, agent: NewAgent, now: number): void {
  sql.exec(
    "INSERT INTO agents (agent_id, name, email, key_hash, ping_endpoint, created_at) VALUES (?, ?, ?, ?, ?, ?)",
    agent.agentId,
    agent.name,
    agent.email,
    agent.keyHash,
    agent.pingEndpoint,
    now,
  );
}

/** The agent, if `keyHash` is its API key's hash. */
export function agentWithKey(sql: SqlStorage, agentId: string, keyHash: string): AgentRow | null {
  const row = sql.exec<AgentRow>("SELECT * FROM agents WHERE agent_id = ?", agentId).toArray()[0];
  return row && row.key_hash === keyHash ? row : null;
}

export const hasAgent = (sql: SqlStorage, agentId: string) => sql.exec("SELECT 1 FROM agents WHERE agent_id = ?", agentId).toArray().length > 0;

export function agentsOf(sql: SqlStorage): (AgentIdentity & { createdAt: number })[] {
  const rows = sql.exec<AgentRow & { created_at: number }>("SELECT * FROM agents ORDER BY created_at").toArray();
  return rows.map((row) => ({ ...identityOf(row), createdAt: row.created_at }));
}

/**
 * Deletes the agent at once, listing first what it still needs ended (its live requests' user
 * codes, and `''` for its vault): they stay listed until the worker confirms them
 * (`clearRevocations`), so a delete whose revocations failed is finished by its retry. Its slots
 * are freed by the `agent_deleted` event the caller records in the same transaction (./live-slots.ts).
 */
export function deleteAgentRows(sql: SqlStorage, agentId: string, now: number): void {
  for (const userCode of liveSlotsOf(sql, agentId, now)) sql.exec("INSERT OR IGNORE INTO pending_revocations (agent_id, user_code) VALUES (?, ?)", agentId, userCode);
  sql.exec("INSERT OR IGNORE INTO pending_revocations (agent_id, user_code) VALUES (?, '')", agentId);
  sql.exec("DELETE FROM agents WHERE agent_id = ?", agentId);
}

/** Null when nothing is owed (a deleted agent always owes its vault until that is confirmed). */
export function revocationsOwed(sql: SqlStorage, agentId: string): RevocationsOwed | null {
  const pending = sql
    .exec<{ user_code: string }>("SELECT user_code FROM pending_revocations WHERE agent_id = ?", agentId)
    .toArray()
    .map((row) => row.user_code);
  if (pending.length === 0) return null;
  return { activeUserCodes: pending.filter((code) => code !== ""), purgeVault: pending.includes("") };
}

/** The worker revoked these requests of a deleted agent (and purged its vault). */
export function clearRevocations(sql: SqlStorage, agentId: string, userCodes: string[], vaultPurged: boolean): void {
  for (const userCode of vaultPurged ? [...userCodes, ""] : userCodes) {
    sql.exec("DELETE FROM pending_revocations WHERE agent_id = ? AND user_code = ?", agentId, userCode);
  }
}
