/**
 * The scenarios autocannon runs: two ceilings and three Keyferry paths (bench/README.md explains
 * each); the poll run and its ceiling, do-read, are bench/paced-scenarios.ts.
 */
import { nextIp, ISSUE_BODY, type Agent, type Pending } from "./client.ts";
import { errorCodeOf, type Context, type Scenario } from "./load.ts";

const JSON_HEADERS = { "Content-Type": "application/json" };
const ok = (expected: number) => (status: number) => (status === expected ? "ok" : "error");

export const bare = (url: string, connections: number, duration: number): Scenario => ({
  name: "bare",
  url,
  connections,
  duration,
  requests: [{ method: "GET", check: ok(200) }],
});

export const doCreate = (url: string, connections: number, duration: number): Scenario => ({
  name: "do-create",
  url,
  connections,
  duration,
  requests: [{ method: "POST", check: ok(201) }],
});

/**
 * Issuance: every answer takes an active slot (≤ 5 per account). Either for `duration` seconds, as
 * long as do-create's run beside it, from more slots than the run can use (a slot used twice
 * answers 429, counted as an error); or, without a duration, exactly one request per slot.
 */
export function issue(url: string, agents: Agent[], connections: number, duration?: number): Scenario {
  const slots = agents.flatMap((agent) => [agent, agent, agent, agent, agent]);
  let next = 0;
  return {
    name: "issue",
    url,
    connections,
    ...(duration ? { duration } : { amount: slots.length }),
    requests: [
      {
        path: "/v1/credentials/request",
        body: ISSUE_BODY,
        setup: (request) => {
          const agent = slots[next++ % slots.length]!;
          request.headers = { ...JSON_HEADERS, Authorization: `Bearer ${agent.apiKey}` };
        },
        check: (status, body) => (status === 200 && body.includes('"device_code"') ? "ok" : "error"),
      },
    ],
  };
}

/** The operator's look-up of requests this browser already claimed (cookie), each from its own address. */
export function lookup(url: string, pool: Array<Pending & { cookie: string }>, connections: number, duration: number): Scenario {
  let next = 0;
  return {
    name: "lookup",
    url,
    connections,
    duration,
    requests: [
      {
        path: "/v1/approvals/lookup",
        setup: (request) => {
          const item = pool[next++ % pool.length]!;
          request.headers = { ...JSON_HEADERS, Cookie: item.cookie, "CF-Connecting-IP": nextIp() };
          request.body = JSON.stringify({ user_code: item.userCode, email: item.agent.operatorEmail });
        },
        check: (status, body) => (status === 200 && body.includes('"approval_token"') ? "ok" : "error"),
      },
    ],
  };
}

const cookieOf = (headers: Record<string, string | string[]>): string | null => {
  const raw = headers["set-cookie"] ?? headers["Set-Cookie"];
  const first = Array.isArray(raw) ? raw[0] : raw;
  return first ? first.split(";")[0]! : null;
};

/**
 * Full handoffs, each connection in turn: request → look-up → approve → poll delivered. An agent
 * (one per account) is held by one handoff at a time, so an account never nears its 5 slots.
 * Counted per handoff; latency is the whole handoff's.
 */
export function handoff(url: string, agents: Agent[], connections: number, duration: number): Scenario {
  const free = agents.slice();
  const latencies: number[] = [];
  // A decided request answers its poll at once (never slow_down); counted all the same, as in every run.
  const notes = { slow_down: 0 };
  let counter = 0;
  const release = (context: Context) => {
    if (context.agent) free.push(context.agent);
    context.agent = null;
  };
  return {
    name: "handoff",
    url,
    connections,
    duration,
    perUnit: 1,
    unitLatencies: latencies,
    notes,
    requests: [
      {
        path: "/v1/credentials/request",
        body: ISSUE_BODY,
        setup: (request, context) => {
          const agent = free.shift();
          if (!agent) throw new Error("handoff: agent pool exhausted");
          context.agent = agent;
          context.started = performance.now();
          request.headers = { ...JSON_HEADERS, Authorization: `Bearer ${agent.apiKey}` };
        },
        check: (status, body, context) => {
          if (status !== 200) return release(context), "error";
          const parsed = JSON.parse(body);
          context.deviceCode = parsed.device_code;
          context.userCode = parsed.user_code;
          return "step";
        },
      },
      {
        path: "/v1/approvals/lookup",
        setup: (request, context) => {
          if (!context.userCode) return null;
          request.headers = { ...JSON_HEADERS, "CF-Connecting-IP": nextIp() };
          request.body = JSON.stringify({ user_code: context.userCode, email: context.agent!.operatorEmail });
        },
        check: (status, body, context, headers) => {
          if (status !== 200) return release(context), "error";
          context.cookie = cookieOf(headers);
          context.approvalToken = JSON.parse(body).approval_token;
          return "step";
        },
      },
      {
        path: "/v1/approvals/decide",
        setup: (request, context) => {
          if (!context.approvalToken) return null;
          request.headers = { ...JSON_HEADERS, Cookie: context.cookie ?? "" };
          request.body = JSON.stringify({ approval_token: context.approvalToken, decision: "approve", credential_value: `bench-secret-${++counter}` });
        },
        check: (status, _body, context) => {
          if (status !== 200) return release(context), "error";
          context.approved = true;
          return "step";
        },
      },
      {
        path: "/v1/credentials/poll",
        setup: (request, context) => {
          if (!context.approved) return null;
          request.headers = JSON_HEADERS;
          request.body = JSON.stringify({ device_code: context.deviceCode });
        },
        check: (status, body, context) => {
          const delivered = status === 200 && body.includes('"credential_value":"bench-secret-');
          if (errorCodeOf(body) === "slow_down") notes.slow_down++;
          if (delivered) latencies.push(performance.now() - context.started!);
          release(context);
          return delivered ? "ok" : "error";
        },
      },
    ],
  };
}
