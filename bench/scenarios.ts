/** The measured scenarios: three ceilings and four Keyferry paths (bench/README.md explains each). */
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

export function doRead(url: string, names: number, connections: number, duration: number): Scenario {
  let next = 0;
  return {
    name: "do-read",
    url,
    connections,
    duration,
    requests: [
      {
        method: "GET",
        setup: (request) => {
          request.path = `/?n=${next++ % names}`;
        },
        check: ok(200),
      },
    ],
  };
}

export const doCreate = (url: string, connections: number, duration: number): Scenario => ({
  name: "do-create",
  url,
  connections,
  duration,
  requests: [{ method: "POST", check: ok(201) }],
});

/** Issuance: every answer takes an active slot, so the run is a count of prepared slots (≤ 5 per account). */
export function issue(url: string, agents: Agent[], connections: number): Scenario {
  const slots = agents.flatMap((agent) => [agent, agent, agent, agent, agent]);
  let next = 0;
  return {
    name: "issue",
    url,
    connections,
    amount: slots.length,
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

/** What a simulated agent leaves beyond its interval before polling again: the trip and timer jitter. */
const POLL_MARGIN_MS = 250;

/**
 * Well-behaved polling over many pending requests, as agents that each poll at their interval and
 * never early (RFC 8628 §3.5): the round robin skips a request polled less than its interval (and
 * POLL_MARGIN_MS) ago, and, were one ever answered `slow_down`, adds 5 s to its interval as a real
 * client does. Should every request be that recent (the pool too small for the rate), the poll
 * is sent anyway and counted `early`. (autocannon's `overallRate` would cap the rate, but it then
 * resends a connection's previous request without calling `setupRequest`: the same request, early.)
 */
export function poll(url: string, pool: Pending[], connections: number, duration: number, intervalMs = 1000): Scenario {
  let next = 0;
  // Made before the run, so the load generator, which shares the machine, spends nothing on them.
  const bodies = pool.map((p) => JSON.stringify({ device_code: p.deviceCode }));
  const lastSent = new Float64Array(bodies.length);
  const intervals = new Float64Array(bodies.length).fill(intervalMs);
  const notes = { authorization_pending: 0, slow_down: 0, early: 0 };
  return {
    name: "poll",
    url,
    connections,
    duration,
    notes,
    requests: [
      {
        path: "/v1/credentials/poll",
        headers: JSON_HEADERS,
        setup: (request, context) => {
          const now = performance.now();
          let index = next++ % bodies.length;
          for (let tries = 1; now - lastSent[index]! < intervals[index]! + POLL_MARGIN_MS; tries++) {
            if (tries >= bodies.length) {
              notes.early++;
              break;
            }
            index = next++ % bodies.length;
          }
          lastSent[index] = now;
          context.pollIndex = index;
          request.body = bodies[index]!;
        },
        check: (status, body, context) => {
          const code = errorCodeOf(body);
          if (status !== 400 || (code !== "authorization_pending" && code !== "slow_down")) return "error";
          if (code === "slow_down" && context.pollIndex !== undefined) intervals[context.pollIndex]! += 5000;
          notes[code]++;
          return "ok";
        },
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
          if (delivered) latencies.push(performance.now() - context.started!);
          release(context);
          return delivered ? "ok" : "error";
        },
      },
    ],
  };
}
