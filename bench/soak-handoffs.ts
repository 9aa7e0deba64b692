/**
 * The soak's traffic (bench/soak.ts): agents that each run handoffs one after another, polling like
 * the SDK (wait the interval, +5 s on slow_down, RFC 8628 §3.5) and polling once more after the
 * 200; operators that approve what the agents asked for through the JSON API (look-up, then decide
 * with a fresh random value). Everything seen is tallied; nothing here judges the run.
 */
import { randomBytes } from "node:crypto";
import { api, nextIp, sleep, type Agent, type Pending } from "./client.ts";

export interface Tally {
  issued: number;
  approved: number;
  delivered: number;
  secondPollInvalidGrant: number;
  wrongValue: number;
  lost: number;
  fiveXx: number;
  /** 429 `too_many_requests` at issuance (the per-agent minute cap), waited out and asked again. */
  rateLimited: number;
  unexpected: Array<{ step: string; status: number; error?: string }>;
  deliveryMs: number[];
  handoffMs: number[];
  /** Each handoff's unique description (the webhook tally matches events by it). */
  descriptions: Set<string>;
  /** Device code → the value its operator approved. */
  values: Map<string, string>;
  deliveredValues: Set<string>;
}

export interface HandoffOptions {
  url: string;
  runId: string;
  /** The vault key every request names: the storage scan's positive control. */
  marker: string;
  handoffs: number;
  operators: number;
  handoffTimeoutMs: number;
}

export async function runHandoffs(agents: Agent[], opts: HandoffOptions): Promise<Tally> {
  const { url, runId, marker } = opts;
  const tally: Tally = { issued: 0, approved: 0, delivered: 0, secondPollInvalidGrant: 0, wrongValue: 0, lost: 0, fiveXx: 0, rateLimited: 0, unexpected: [], deliveryMs: [], handoffMs: [], descriptions: new Set(), values: new Map(), deliveredValues: new Set() };
  const approvedAt = new Map<string, number>();
  const queue: Pending[] = [];
  let remaining = opts.handoffs;
  let handoffNumber = 0;
  let issuing = true;

  const note = (step: string, status: number, body: object) => {
    if (status >= 500) tally.fiveXx++;
    tally.unexpected.push({ step, status, ...("error" in body && typeof body.error === "string" ? { error: body.error } : {}) });
  };

  const operator = async () => {
    while (issuing || queue.length > 0) {
      const pending = queue.shift();
      if (!pending) {
        await sleep(20);
        continue;
      }
      const value = `soak-secret-${runId}-${randomBytes(12).toString("hex")}`;
      const looked = await api(url, "POST", "/v1/approvals/lookup", { user_code: pending.userCode, email: pending.agent.operatorEmail }, { "CF-Connecting-IP": nextIp() });
      if (looked.status !== 200) {
        note("lookup", looked.status, looked.json);
        continue;
      }
      const cookie = looked.headers.get("set-cookie")?.split(";")[0] ?? "";
      tally.values.set(pending.deviceCode, value);
      const decided = await api(url, "POST", "/v1/approvals/decide", { approval_token: looked.json.approval_token, decision: "approve", credential_value: value }, { Cookie: cookie });
      if (decided.status !== 200) {
        tally.values.delete(pending.deviceCode);
        note("decide", decided.status, decided.json);
        continue;
      }
      approvedAt.set(pending.deviceCode, performance.now());
      tally.approved++;
    }
  };

  const agentLoop = async (agent: Agent) => {
    while (remaining > 0) {
      remaining--;
      const begun = performance.now();
      const description = `Soak handoff ${runId} #${++handoffNumber}`;
      const issued = await api<{ device_code: string; user_code: string; interval: number }>(url, "POST", "/v1/credentials/request", { description, vault_key: marker }, { Authorization: `Bearer ${agent.apiKey}` });
      if (issued.status === 429 && (issued.json as { error?: string }).error === "too_many_requests") {
        // An agent may open 10 requests a minute (core/limits.ts): wait as told, as a real agent would, and ask again.
        tally.rateLimited++;
        remaining++;
        await sleep(Number(issued.headers.get("retry-after") ?? 5) * 1000);
        continue;
      }
      if (issued.status !== 200) {
        note("request", issued.status, issued.json);
        continue;
      }
      tally.issued++;
      tally.descriptions.add(description);
      const pending: Pending = { agent, deviceCode: issued.json.device_code, userCode: issued.json.user_code };
      queue.push(pending);
      let interval = issued.json.interval;
      let done = false;
      while (!done) {
        if (performance.now() - begun > opts.handoffTimeoutMs) {
          tally.lost++;
          break;
        }
        await sleep(interval * 1000);
        const polled = await api(url, "POST", "/v1/credentials/poll", { device_code: pending.deviceCode });
        if (polled.status === 200) {
          done = true;
          const value = polled.json.credential_value as string;
          if (value !== tally.values.get(pending.deviceCode) || tally.deliveredValues.has(value)) tally.wrongValue++;
          tally.deliveredValues.add(value);
          tally.delivered++;
          tally.deliveryMs.push(performance.now() - (approvedAt.get(pending.deviceCode) ?? Number.NaN));
          tally.handoffMs.push(performance.now() - begun);
          const again = await api(url, "POST", "/v1/credentials/poll", { device_code: pending.deviceCode });
          if (again.status === 400 && again.json.error === "invalid_grant") tally.secondPollInvalidGrant++;
          else note("second poll", again.status, again.json);
        } else if (polled.json.error === "slow_down") interval += 5;
        else if (polled.json.error !== "authorization_pending") {
          note("poll", polled.status, polled.json);
          done = true;
        }
      }
    }
  };

  const operators = Array.from({ length: opts.operators }, operator);
  await Promise.all(agents.map(agentLoop));
  issuing = false;
  await Promise.all(operators);
  return tally;
}
