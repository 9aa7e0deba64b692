/** Small HTTP helpers for the benchmark's setup steps (not measured): admin calls, pools, handoffs. */

export interface Agent {
  accountId: string;
  agentId: string;
  apiKey: string;
  operatorEmail: string;
}

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

export async function api(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(base + path, {
    method,
    headers: { ...(body === undefined ? {} : { "Content-Type": "application/json" }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json: Record<string, any> = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    // not JSON
  }
  return { status: response.status, json, headers: response.headers };
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
  const admin = { Authorization: `Bearer ${adminToken}` };
  return mapLimit(Array.from({ length: count }, (_, i) => i), 16, async (i) => {
    const operatorEmail = `op-${tag}-${i}@bench.example`;
    const account = await api(base, "POST", "/v1/admin/accounts", { name: `bench ${tag} ${i}`, operator_email: operatorEmail }, admin);
    if (account.status !== 201) throw new Error(`create account: ${account.status} ${JSON.stringify(account.json)}`);
    const agent = await api(base, "POST", `/v1/admin/accounts/${account.json.account_id}/agents`, { name: `bench-agent-${i}` }, admin);
    if (agent.status !== 201) throw new Error(`create agent: ${agent.status} ${JSON.stringify(agent.json)}`);
    return { accountId: account.json.account_id, agentId: agent.json.agent_id, apiKey: agent.json.api_key, operatorEmail };
  });
}

export const ISSUE_BODY = JSON.stringify({ description: "Benchmark credential", vault_key: "bench-key" });

export async function issue(base: string, agent: Agent): Promise<Pending> {
  const response = await api(base, "POST", "/v1/credentials/request", JSON.parse(ISSUE_BODY), { Authorization: `Bearer ${agent.apiKey}` });
  if (response.status !== 200) throw new Error(`issue: ${response.status} ${JSON.stringify(response.json)}`);
  return { agent, deviceCode: response.json.device_code, userCode: response.json.user_code };
}

/** `perAgent` pending requests for each agent (at most 5: the contract's per-account limit). */
export async function issuePool(base: string, agents: Agent[], perAgent: number): Promise<Pending[]> {
  const slots = agents.flatMap((agent) => Array.from({ length: perAgent }, () => agent));
  return mapLimit(slots, 16, (agent) => issue(base, agent));
}

/** The operator's look-up; returns the claim cookie and the approval token. */
export async function lookup(base: string, pending: Pending, cookie?: string) {
  const response = await api(base, "POST", "/v1/approvals/lookup", { user_code: pending.userCode, email: pending.agent.operatorEmail }, {
    "CF-Connecting-IP": nextIp(),
    ...(cookie ? { Cookie: cookie } : {}),
  });
  if (response.status !== 200) throw new Error(`lookup: ${response.status} ${JSON.stringify(response.json)}`);
  const setCookie = response.headers.get("set-cookie");
  return { cookie: setCookie ? setCookie.split(";")[0]! : cookie!, approvalToken: response.json.approval_token as string };
}

export async function approve(base: string, pending: Pending, value: string): Promise<void> {
  const looked = await lookup(base, pending);
  const decided = await api(base, "POST", "/v1/approvals/decide", { approval_token: looked.approvalToken, decision: "approve", credential_value: value }, {
    Cookie: looked.cookie,
  });
  if (decided.status !== 200) throw new Error(`decide: ${decided.status} ${JSON.stringify(decided.json)}`);
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
