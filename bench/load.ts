/**
 * One measured run: autocannon over loopback, bounded by time (or by count where each request
 * consumes something), counting every answer against what the scenario expects.
 */
import autocannon from "autocannon";
import { percentile, type Agent } from "./client.ts";

export interface RunResult {
  name: string;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  /** Transport errors, timeouts and answers other than the expected ones (e.g. a 5xx). */
  errors: number;
  /** Answers that were served as expected. */
  served: number;
  /** slow_down answers drawn (RFC 8628 §3.5): 0 for a fair probe; reported by every run. */
  slow_down?: number;
  /** Extra counters a scenario keeps, e.g. the poll run's answers by code and its waits. */
  notes?: Record<string, number>;
}

/** What an answer means: served as expected, an error, or an intermediate step of a sequence. */
export type Verdict = "ok" | "error" | "step";

export interface RequestSpec {
  method?: "GET" | "POST";
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Mutates the request just before it is sent; may read and write the connection's context. */
  setup?: (request: { method: string; path: string; headers: Record<string, string>; body?: string }, context: Context) => unknown;
  /** Judges the answer; may store what the next request of the sequence needs in the context. */
  check: (status: number, body: string, context: Context, headers: Record<string, string | string[]>) => Verdict;
}

/** What one connection carries from one request of its sequence to the next (autocannon's `context`). */
export interface Context {
  agent?: Agent | null;
  started?: number;
  deviceCode?: string;
  userCode?: string;
  cookie?: string | null;
  approvalToken?: string;
  approved?: boolean;
}

type SetupRequest = Parameters<NonNullable<RequestSpec["setup"]>>[0];

export interface Scenario {
  name: string;
  url: string;
  requests: RequestSpec[];
  connections: number;
  /** Seconds; or `amount`, a number of requests, when every request uses up a slot. */
  duration?: number;
  amount?: number;
  /** Units of work per answer counted as served (a handoff is 4 requests). Default 1. */
  perUnit?: number;
  /** When set, latencies come from here (end-to-end per unit) instead of per request. */
  unitLatencies?: number[];
  notes?: Record<string, number>;
}

export async function measure(scenario: Scenario): Promise<RunResult> {
  let served = 0;
  let unexpected = 0;
  let lastAnswerAt = 0;
  const requests = scenario.requests.map((spec) => ({
    method: spec.method ?? "POST",
    path: spec.path ?? "/",
    headers: spec.headers ?? {},
    ...(spec.body !== undefined ? { body: spec.body } : {}),
    ...(spec.setup
      ? {
          setupRequest: (request: SetupRequest, context: Context) => {
            const out = spec.setup!(request, context);
            return out === undefined ? request : out;
          },
        }
      : {}),
    onResponse: (status: number, body: string, context: Context, headers: Parameters<RequestSpec["check"]>[3]) => {
      lastAnswerAt = performance.now();
      const verdict = spec.check(status, body, context, headers);
      if (verdict === "ok") served++;
      else if (verdict === "error") unexpected++;
    },
  }));
  // Timed here, to the last answer: autocannon ends a run of a fixed amount (issuance: a few
  // seconds) only at its next one-second tick, which would count up to a second of idling.
  const started = performance.now();
  const result = await autocannon({
    url: scenario.url,
    connections: scenario.connections,
    pipelining: 1,
    timeout: 10,
    ...(scenario.amount ? { amount: scenario.amount } : { duration: scenario.duration ?? 10 }),
    requests,
  } as autocannon.Options);
  const seconds = Math.max(0.001, ((lastAnswerAt || performance.now()) - started) / 1000);
  const perUnit = scenario.perUnit ?? 1;
  const unitLatencies = scenario.unitLatencies?.slice().sort((a, b) => a - b);
  return {
    name: scenario.name,
    rps: round(served / perUnit / seconds),
    p50_ms: round(unitLatencies ? percentile(unitLatencies, 50) : result.latency.p50),
    p99_ms: round(unitLatencies ? percentile(unitLatencies, 99) : result.latency.p99),
    errors: result.errors + result.timeouts + unexpected,
    served,
    slow_down: scenario.notes?.slow_down ?? 0,
    ...(scenario.notes ? { notes: scenario.notes } : {}),
  };
}

export const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

export const errorCodeOf = (body: string): string | null => /"error"\s*:\s*"([a-z_]+)"/.exec(body)?.[1] ?? null;
