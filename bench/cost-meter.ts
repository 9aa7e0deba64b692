/**
 * What Cloudflare bills a handoff for, counted inside workerd (bench/README.md, "Cost per handoff"):
 * Durable Object requests (RPC calls, `fetch`, alarms, hibernation wake-ups; incoming WebSocket
 * messages apart, billed 20:1), SQLite rows written and read from workerd's own cursor meters
 * (`rowsWritten` / `rowsRead`, which count index entries and schema changes too), each
 * `setAlarm` / `deleteAlarm` as one row written, and the key-value API's keys as Cloudflare bills
 * them on SQLite-backed objects: each key put or deleted one row written, each key got one row
 * read (bench/README.md, "Cost per handoff", list prices). Summed over every object of the isolate.
 *
 * Structurally typed, so that the bench's metered entry (bench/workers/metered.ts, bundled for
 * workerd) and test/integration/cost-bound.test.ts share it without either's type set.
 */

interface Cursor {
  readonly rowsRead: number;
  readonly rowsWritten: number;
}
type Method = (this: unknown, ...args: unknown[]) => unknown;
type Prototype = Record<string | symbol, unknown>;

export interface Meters {
  /** Billed Durable Object requests, WebSocket messages excluded. */
  doRequests: number;
  /** Incoming WebSocket messages (billed as one request per 20). */
  wsMessages: number;
  /** Rows written: the cursors' meters plus one per alarm set or deleted and per key put or deleted. */
  rowsWritten: number;
  rowsRead: number;
  /** Of `rowsWritten`, the alarm operations. */
  alarmWrites: number;
  /** Each call counted, as `Class.method`, in order. */
  calls: string[];
}

const WRAPPED = Symbol.for("keyferry.cost-meter.wrapped");

export class CostMeter {
  #cursors: Array<{ cursor: Cursor; query: string }> = [];
  #alarmWrites = 0;
  #calls: string[] = [];
  #on = true;

  /** Starts a new count (and counts from now on). */
  reset(): void {
    this.#cursors = [];
    this.#alarmWrites = 0;
    this.#calls = [];
    this.#on = true;
  }

  /** Stops counting; `read` still gives what was counted. */
  pause(): void {
    this.#on = false;
  }

  /** Runs `inspect` synchronously without counting it (a test reading storage between steps). */
  uncounted<T>(inspect: () => T): T {
    const was = this.#on;
    this.#on = false;
    try {
      return inspect();
    } finally {
      this.#on = was;
    }
  }

  /** The statements that wrote rows, with how many each (where a handoff's rows go). */
  writers(): string[] {
    return this.#cursors.filter(({ cursor }) => cursor.rowsWritten > 0).map(({ cursor, query }) => `${cursor.rowsWritten} ${query.replace(/\s+/g, " ").slice(0, 90)}`);
  }

  read(): Meters {
    let rowsWritten = this.#alarmWrites;
    let rowsRead = 0;
    for (const { cursor } of this.#cursors) {
      rowsWritten += cursor.rowsWritten;
      rowsRead += cursor.rowsRead;
    }
    const wsMessages = this.#calls.filter((c) => c.endsWith(".webSocketMessage")).length;
    return { doRequests: this.#calls.length - wsMessages, wsMessages, rowsWritten, rowsRead, alarmWrites: this.#alarmWrites, calls: [...this.#calls] };
  }

  /**
   * Meters an object's storage: `sql.exec` (every cursor kept until `reset`, its meters read at the
   * end, once it was stepped through), the alarm operations, and the keys of the key-value API
   * (`get`/`put`/`delete`, asynchronous and `kv`'s synchronous ones). Wraps the shared prototypes once.
   */
  meterStorage(storage: { sql: object; kv: object }): void {
    const meter = this;
    wrapOnce(Object.getPrototypeOf(storage.sql) as Prototype, "exec", (original) =>
      function (this: unknown, ...args: unknown[]) {
        const cursor = original.apply(this, args) as Cursor;
        if (meter.#on) meter.#cursors.push({ cursor, query: String(args[0]) });
        return cursor;
      },
    );
    const storageProto = Object.getPrototypeOf(storage) as Prototype;
    for (const name of ["setAlarm", "deleteAlarm"]) {
      wrapOnce(storageProto, name, (original) =>
        function (this: unknown, ...args: unknown[]) {
          if (meter.#on) meter.#alarmWrites++;
          return original.apply(this, args);
        },
      );
    }
    for (const [proto, api] of [[storageProto, "storage"], [Object.getPrototypeOf(storage.kv) as Prototype, "kv"]] as const) {
      for (const name of ["get", "put", "delete"] as const) {
        wrapOnce(proto, name, (original) =>
          function (this: unknown, ...args: unknown[]) {
            if (meter.#on) meter.#cursors.push(keyCursor(`${api}.${name}`, args));
            return original.apply(this, args);
          },
        );
      }
    }
  }

  /** Counts every call into a Durable Object class's methods (RPC, `fetch`, `alarm`, socket events). */
  meterClass(proto: object): void {
    const meter = this;
    const target = proto as Prototype;
    const name = (target.constructor as { name?: string } | undefined)?.name ?? "?";
    for (const key of Object.getOwnPropertyNames(proto)) {
      if (key === "constructor" || typeof target[key] !== "function") continue;
      wrapOnce(target, key, (original) =>
        function (this: unknown, ...args: unknown[]) {
          if (meter.#on) meter.#calls.push(`${name}.${key}`);
          return original.apply(this, args);
        },
      );
    }
  }
}

/**
 * A key-value call's rows, as a cursor would carry them: its keys (one, an array of them, or for
 * `put` an object of entries), one row each, written by `put` and `delete`, read by `get`.
 */
function keyCursor(call: string, [first]: unknown[]): { cursor: Cursor; query: string } {
  const keys = typeof first === "string" ? [first] : Array.isArray(first) ? first.map(String) : Object.keys(first as object);
  const rows = keys.length;
  return { cursor: call.endsWith(".get") ? { rowsRead: rows, rowsWritten: 0 } : { rowsRead: 0, rowsWritten: rows }, query: `${call} ${keys.join(", ")}` };
}

function wrapOnce(proto: Prototype, key: string, wrap: (original: Method) => Method): void {
  const original = proto[key] as Method & { [WRAPPED]?: true };
  if (typeof original !== "function" || original[WRAPPED]) return;
  const wrapped = Object.assign(wrap(original), { [WRAPPED]: true as const });
  proto[key] = wrapped;
}

/** Cloudflare's list prices, USD (bench/README.md quotes them with their source and date). */
export const LIST_PRICES_USD = {
  workerRequestPerMillion: 0.3,
  workerCpuMsPerMillion: 0.02,
  doRequestPerMillion: 0.15,
  doRowsWrittenPerMillion: 1.0,
  doRowsReadPerMillion: 0.001,
} as const;

export interface HandoffMeters {
  worker_requests: number;
  worker_cpu_ms: number;
  do_requests: number;
  ws_messages: number;
  rows_written: number;
  rows_read: number;
}

/** A million handoffs at list prices, beyond the plans' included amounts. */
export function usdPerMillion(m: HandoffMeters): number {
  const p = LIST_PRICES_USD;
  const usd =
    m.worker_requests * p.workerRequestPerMillion +
    m.worker_cpu_ms * p.workerCpuMsPerMillion +
    (m.do_requests + m.ws_messages / 20) * p.doRequestPerMillion +
    m.rows_written * p.doRowsWrittenPerMillion +
    m.rows_read * p.doRowsReadPerMillion;
  return Math.round(usd * 100) / 100;
}
