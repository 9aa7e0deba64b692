/**
 * Small HTTP helpers for the benchmark's setup steps (not measured): admin calls, pools, handoffs.
 * The calls themselves are the e2e tests' (test/e2e/support/api.ts), so both speak the API one way.
 */
import type { DeviceAuthorizationBody } from "../core/wire.ts";
import { api as call, createAccountAndAgent, lookup as lookupAs, operatorDecides, type AccountAndAgent } from "../test/e2e/support/api.ts";
import { LEASE_MS } from "../durable-objects/account/notify/outbox.ts";
import { sleep } from "../test/support/sleep.ts";
export { sleep };

/**
 * Each account the set-up makes invites its owner, which arms the account's alarm for the lease's
 * end, where it is left armed (durable-objects/account/README.md): waits until those alarms ran, so
 * that no timed or metered run is charged with them.
 */
export const setUpAlarmsRun = () => sleep(LEASE_MS + 3000);

export type Agent = AccountAndAgent;

export interface Pending {
  agent: Agent;
  deviceCode: string;
  userCode: string;
}

let ipCounter = 0;
/**
 * A distinct `CF-Connecting-IP` per look-up: the look-up endpoint is rate limited per address
 * (60 a minute), and the benchmark measures the look-up itself, not the limiter's refusals.
 */
export function nextIp(): string {
  ipCounter = (ipCounter + 1) % 16_000_000;
  return `10.${(ipCounter >> 16) & 255}.${(ipCounter >> 8) & 255}.${ipCounter & 255}`;
}

/**
 * One JSON call (test/e2e/support/api.ts, shared with the e2e tests): `json` is the parsed body,
 * or `{}` when it was empty or not JSON. `T` names the fields the caller reads.
 */
export async function api<T = Record<string, unknown>>(base: string, method: string, path: string, body?: Record<string, unknown>, headers: Record<string, string> = {}) {
  const { status, json, headers: responseHeaders } = await call<T>({ url: base }, method, path, body, headers);
  return { status, json, headers: responseHeaders };
}

/** Runs `task` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(items: T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export async function createAgents(base: string, adminToken: string, count: number, tag: string): Promise<Agent[]> {
  return mapLimit(Array.from({ length: count }, (_, i) => i), 16, (i) =>
    createAccountAndAgent({ url: base, adminToken }, { operatorEmail: `op-${tag}-${i}@bench.example`, accountName: `bench ${tag} ${i}`, agentName: `bench-agent-${i}` }),
  );
}

export const ISSUE_BODY = JSON.stringify({ description: "Benchmark credential", vault_key: "bench-key" });

export async function issue(base: string, agent: Agent): Promise<Pending> {
  const response = await api<DeviceAuthorizationBody>(base, "POST", "/v1/credentials/request", JSON.parse(ISSUE_BODY), { Authorization: `Bearer ${agent.apiKey}` });
  const { device_code: deviceCode, user_code: userCode } = response.json;
  if (response.status !== 200 || !deviceCode || !userCode) throw new Error(`issue: ${response.status} ${JSON.stringify(response.json)}`);
  return { agent, deviceCode, userCode };
}

/** `perAgent` pending requests for each agent (at most 5: the contract's per-account limit). */
export async function issuePool(base: string, agents: Agent[], perAgent: number): Promise<Pending[]> {
  const slots = agents.flatMap((agent) => Array.from({ length: perAgent }, () => agent));
  return mapLimit(slots, 16, (agent) => issue(base, agent));
}

/** The operator's look-up, from a fresh address; returns the claim cookie and the approval token. */
export async function lookup(base: string, pending: Pending, cookie?: string) {
  const found = await lookupAs({ url: base }, { user_code: pending.userCode, email: pending.agent.operatorEmail }, cookie, { "CF-Connecting-IP": nextIp() });
  if (found.res.status !== 200 || !found.cookie) throw new Error(`lookup: ${found.res.status} ${found.res.text}`);
  return { cookie: found.cookie, approvalToken: found.res.json.approval_token };
}

export function approve(base: string, pending: Pending, value: string): Promise<void> {
  return operatorDecides({ url: base }, pending.userCode, pending.agent.operatorEmail, { decision: "approve", credential_value: value }, { "CF-Connecting-IP": nextIp() });
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}


/**
 * Counts a run's errors by kind: a transport error's code, or the unexpected answer. `run` wraps one
 * handoff so a thrown transport error (a connection reset, say) is counted, not fatal to the bench.
 */
export function errorTally() {
  const kinds: Record<string, number> = {};
  let count = 0;
  const fail = (kind: string): void => {
    count++;
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  };
  const run = async (task: () => Promise<unknown>): Promise<void> => {
    try {
      await task();
    } catch (error) {
      const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
      fail(cause instanceof Error ? ((cause as NodeJS.ErrnoException).code ?? cause.message) : String(cause));
    }
  };
  return { fail, run, get errors() { return count; }, kinds };
}
