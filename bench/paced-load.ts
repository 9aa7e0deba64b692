/**
 * The paired runs, poll and its ceiling do-read, through one closed-loop load generator whose
 * connections may wait: each of `connections` keep-alive connections takes the next job, waits on
 * a timer until the job is due (no busy loop), sends it, reads the answer, takes the next.
 * autocannon cannot wait between requests (its `setupRequest` is synchronous, and `overallRate`
 * resends a connection's previous request without calling it), so a poll probe driven by it sent
 * polls early once the pool ran out of due requests. Both runs of the pair use this generator, so
 * the ratio compares the same client, connections and duration (bench/README.md).
 */
import { Client } from "undici";
import { percentile, sleep } from "./client.ts";
import { round, type RunResult, type Verdict } from "./load.ts";

export interface Job {
  /** `performance.now()` from which it may be sent. */
  due: number;
  method: "GET" | "POST";
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Judges the answer (status 0: a transport error), `at` when it arrived. */
  settle(status: number, body: string, at: number): Verdict;
  /** The run ended before it was due: it goes back, unsent. */
  putBack(): void;
}

export interface PacedScenario {
  name: string;
  url: string;
  connections: number;
  /** Seconds. */
  duration: number;
  /** The job to send next: the one due soonest. */
  next(): Job;
  /** Running counters, kept across slices (e.g. slow_down answers, waits). */
  notes?: Record<string, number>;
}

export async function measurePaced(scenario: PacedScenario): Promise<RunResult> {
  const latencies: number[] = [];
  let served = 0;
  let errors = 0;
  const clients = Array.from({ length: scenario.connections }, () => new Client(scenario.url, { pipelining: 1 }));
  const started = performance.now();
  const end = started + scenario.duration * 1000;
  const connection = async (client: Client) => {
    while (performance.now() < end) {
      const job = scenario.next();
      const wait = job.due - performance.now();
      if (wait > 0) {
        if (job.due >= end) return job.putBack();
        if (scenario.notes) scenario.notes.waits = (scenario.notes.waits ?? 0) + 1;
        await sleep(wait);
      }
      const sent = performance.now();
      let verdict: Verdict;
      try {
        const answer = await client.request({ method: job.method, path: job.path, headers: job.headers ?? {}, body: job.body ?? null });
        const text = await answer.body.text();
        const at = performance.now();
        latencies.push(at - sent);
        verdict = job.settle(answer.statusCode, text, at);
      } catch {
        verdict = job.settle(0, "", performance.now());
        if (verdict !== "error") verdict = "error";
      }
      if (verdict === "ok") served++;
      else if (verdict === "error") errors++;
    }
  };
  await Promise.all(clients.map(connection));
  // The run's span, even if its connections stopped early for want of a job due before its end.
  const seconds = Math.max(scenario.duration, (performance.now() - started) / 1000);
  await Promise.all(clients.map((client) => client.close()));
  latencies.sort((a, b) => a - b);
  const notes = scenario.notes;
  return {
    name: scenario.name,
    rps: round(served / seconds),
    p50_ms: round(percentile(latencies, 50)),
    p99_ms: round(percentile(latencies, 99)),
    errors,
    served,
    slow_down: notes?.slow_down ?? 0,
    ...(notes ? { notes: { ...notes } } : {}),
  };
}

/**
 * Two scenarios in alternating slices (a, b, a, b, …), so that what else the shared machine does
 * in those seconds falls on both alike; each scenario's `duration` is split over the slices. A
 * scenario object keeps its own state across slices (the poll's due times go on where they were).
 */
export async function measureAlternating(a: PacedScenario, b: PacedScenario, slices: number): Promise<[RunResult, RunResult]> {
  const runs: [RunResult[], RunResult[]] = [[], []];
  for (let i = 0; i < slices; i++) {
    for (const [index, scenario] of [a, b].entries()) {
      runs[index]!.push(await measurePaced({ ...scenario, duration: scenario.duration / slices }));
    }
  }
  return [combine(runs[0]), combine(runs[1])];
}

/** Requests per second over all slices; latency percentiles of the median slice; errors summed. */
function combine(slices: RunResult[]): RunResult {
  const served = slices.reduce((sum, r) => sum + r.served, 0);
  const seconds = slices.reduce((sum, r) => sum + (r.rps > 0 ? r.served / r.rps : 0), 0);
  const middle = (pick: (r: RunResult) => number) => slices.map(pick).sort((x, y) => x - y)[Math.floor((slices.length - 1) / 2)]!;
  // A scenario's notes are its own running counters, shared by its slices: the last slice has them all.
  const notes = slices.at(-1)!.notes;
  return {
    name: slices[0]!.name,
    rps: round(seconds > 0 ? served / seconds : 0),
    p50_ms: middle((r) => r.p50_ms),
    p99_ms: middle((r) => r.p99_ms),
    errors: slices.reduce((sum, r) => sum + r.errors, 0),
    served,
    slow_down: notes?.slow_down ?? 0,
    ...(notes ? { notes: { ...notes } } : {}),
  };
}
