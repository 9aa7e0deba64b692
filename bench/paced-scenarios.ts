/**
 * The paired runs behind the poll ratio (bench/paced-load.ts runs them): do-read, the worker + one
 * Durable Object read ceiling, and poll, agents that each poll at their interval and never early.
 */
import { api, mapLimit, sleep, type Pending } from "./client.ts";
import { errorCodeOf } from "./load.ts";
import type { Job, PacedScenario } from "./paced-load.ts";

const JSON_HEADERS = { "Content-Type": "application/json" };

/** One row read from one of `names` seeded objects, in turn; every read is due at once. */
export function doRead(url: string, names: number, connections: number, duration: number): PacedScenario {
  let next = 0;
  return {
    name: "do-read",
    url,
    connections,
    duration,
    next: (): Job => ({
      due: 0,
      method: "GET",
      path: `/?n=${next++ % names}`,
      settle: (status) => (status === 200 ? "ok" : "error"),
      putBack: () => undefined,
    }),
  };
}

/**
 * What a simulated agent leaves beyond its interval after its last poll's answer. The server checks
 * `now − last poll ≥ interval` with its own clock, which read the last poll before its answer left,
 * and reads the next one after it arrived, so the answer's arrival + interval is never early; the
 * margin covers the two clocks (workerd's `Date.now()`, Node's `performance.now()`) and timers.
 */
export const POLL_MARGIN_MS = 25;

/**
 * Pending requests polled as their agents would (RFC 8628 §3.5): each has a due time, its last
 * poll's answer + its interval (+ POLL_MARGIN_MS); a connection takes the request due soonest and,
 * if it is not due yet, waits for it (`measurePaced`), so no poll is ever early. A `slow_down` (none
 * is expected: every run counts them) adds 5 s to that request's interval, as a client does. When
 * connections wait (`waits` in the notes), the pool, not the server, held the rate: at most
 * `pool / (interval + margin)` polls a second.
 */
export function poll(url: string, pool: Pending[], connections: number, duration: number, intervalMs: number) {
  // Made before the run, so the load generator, which shares the machine, spends nothing on them.
  const bodies = pool.map((p) => JSON.stringify({ device_code: p.deviceCode }));
  const due = new Float64Array(bodies.length);
  const intervals = new Float64Array(bodies.length).fill(intervalMs);
  const queue = new DueQueue(due);
  const notes = { authorization_pending: 0, slow_down: 0, waits: 0 };
  const polledAt = (index: number, at: number) => {
    due[index] = at + intervals[index]! + POLL_MARGIN_MS;
    queue.push(index);
  };
  const scenario: PacedScenario = {
    name: "poll",
    url,
    connections,
    duration,
    notes,
    next: (): Job => {
      const index = queue.pop();
      if (index === undefined) throw new Error("poll: every pending request is in flight (a pool smaller than the connections)");
      return {
        due: due[index]!,
        method: "POST",
        path: "/v1/credentials/poll",
        headers: JSON_HEADERS,
        body: bodies[index]!,
        settle: (status, body, at) => {
          const code = errorCodeOf(body);
          if (code === "slow_down") intervals[index]! += 5000;
          polledAt(index, at);
          if (status !== 400 || (code !== "authorization_pending" && code !== "slow_down")) return "error";
          notes[code]++;
          return "ok";
        },
        putBack: () => queue.push(index),
      };
    },
  };
  return {
    scenario,
    /** Polls the rate is capped at by the pool: each request once per interval and margin. */
    rateCap: Math.floor(bodies.length / ((intervalMs + POLL_MARGIN_MS) / 1000)),
    /**
     * Untimed: one poll of every request (the first after set-up loads its object), then a pause
     * until all are due, so the first slice starts with the whole pool due.
     */
    async warm(): Promise<void> {
      const polled = await mapLimit(pool, 16, async (p) => {
        await api(url, "POST", "/v1/credentials/poll", { device_code: p.deviceCode });
        return performance.now();
      });
      queue.clear();
      polled.forEach((at, index) => polledAt(index, at));
      await sleep(Math.max(0, Math.max(...due) - performance.now()));
    },
  };
}

/** A binary min-heap of pool indices ordered by their due time. */
class DueQueue {
  readonly #due: Float64Array;
  #heap: number[] = [];

  constructor(due: Float64Array) {
    this.#due = due;
  }

  clear(): void {
    this.#heap = [];
  }

  push(index: number): void {
    const heap = this.#heap;
    heap.push(index);
    for (let i = heap.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (this.#due[heap[parent]!]! <= this.#due[heap[i]!]!) break;
      [heap[parent], heap[i]] = [heap[i]!, heap[parent]!];
      i = parent;
    }
  }

  pop(): number | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length === 0 || last === undefined) return top;
    heap[0] = last;
    for (let i = 0; ; ) {
      const left = 2 * i + 1;
      const right = left + 1;
      let least = i;
      if (left < heap.length && this.#due[heap[left]!]! < this.#due[heap[least]!]!) least = left;
      if (right < heap.length && this.#due[heap[right]!]! < this.#due[heap[least]!]!) least = right;
      if (least === i) return top;
      [heap[least], heap[i]] = [heap[i]!, heap[least]!];
      i = least;
    }
  }
}
