// Test doubles for the SDK unit tests: an in-memory Keyferry API behind an injected `fetch`, and a
// fake clock whose `sleep` returns at once and moves time forward, so waits take no real seconds.
import { abortedError } from "../../sdk/src/http";
import type { FetchLike } from "../../sdk/src/http";
import { KeyferryError } from "../../sdk/src/index";
import { expect } from "vitest";

export interface Exchange {
  method: string;
  path: string;
  headers: Headers;
  body: unknown;
}

export type Handler = (exchange: Exchange) => Response | Promise<Response>;

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store", ...headers },
  });
}

export const oauthError = (error: string, status = 400) => json(status, { error, error_description: `${error} (test)` });

/** A `fetch` that records every exchange and answers with `handler`. */
export function fakeFetch(handler: Handler): { fetch: FetchLike; exchanges: Exchange[] } {
  const exchanges: Exchange[] = [];
  const fetch: FetchLike = async (input, init) => {
    const url = new URL(input);
    const text = typeof init.body === "string" ? init.body : undefined;
    const exchange = {
      method: init.method ?? "GET",
      path: url.pathname,
      headers: new Headers(init.headers),
      body: text === undefined ? undefined : JSON.parse(text),
    };
    exchanges.push(exchange);
    return handler(exchange);
  };
  return { fetch, exchanges };
}

export function fakeClock(start = Date.UTC(2026, 0, 1)) {
  let time = start;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => time,
    advance: (ms: number) => {
      time += ms;
    },
    sleep: async (ms: number, signal?: AbortSignal) => {
      if (signal?.aborted) throw abortedError(signal);
      sleeps.push(ms);
      time += ms;
      if (signal?.aborted) throw abortedError(signal);
    },
  };
}

/** An in-memory `/v1/vault` for one agent, as the real one answers (core/wire.ts). */
export function fakeVaultServer() {
  const items = new Map<string, { ciphertext: string; updated_at: string }>();
  const handler: Handler = ({ method, path, body }) => {
    if (path === "/v1/vault" && method === "GET") {
      return json(200, { items: [...items].map(([vault_key, item]) => ({ vault_key, updated_at: item.updated_at })) });
    }
    const name = decodeURIComponent(path.replace(/^\/v1\/vault\//, ""));
    if (method === "PUT") {
      const updated_at = new Date().toISOString();
      items.set(name, { ciphertext: (body as { ciphertext: string }).ciphertext, updated_at });
      return json(200, { vault_key: name, updated_at });
    }
    if (method === "GET") {
      const item = items.get(name);
      return item ? json(200, { vault_key: name, ...item }) : oauthError("not_found", 404);
    }
    if (method === "DELETE") {
      items.delete(name);
      return new Response(null, { status: 204 });
    }
    return oauthError("invalid_request");
  };
  return { items, ...fakeFetch(handler) };
}

/** The typed error a promise rejects with; fails the test when it resolves or throws anything else. */
export async function failure(promise: Promise<unknown>): Promise<KeyferryError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KeyferryError);
  return error as KeyferryError;
}

/**
 * A clock whose `sleep` waits until the test moves time past its end (`advance`), or the signal
 * fires: for waits where other events (a socket's) must happen while the client sleeps.
 */
export function manualClock(start = Date.UTC(2026, 0, 1)) {
  let time = start;
  const timers = new Set<{ at: number; fire: () => void }>();
  return {
    now: () => time,
    sleep: (ms: number, signal?: AbortSignal) =>
      new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(abortedError(signal));
        if (ms <= 0) return resolve();
        const timer = {
          at: time + ms,
          fire: () => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
          },
        };
        const onAbort = () => {
          timers.delete(timer);
          reject(abortedError(signal!));
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        timers.add(timer);
      }),
    /** Sleepers now waiting. */
    sleepers: () => timers.size,
    /** Moves time forward and wakes every sleeper that is due, then lets the client run. */
    advance: async (ms: number) => {
      time += ms;
      for (const timer of [...timers]) {
        if (timer.at <= time) {
          timers.delete(timer);
          timer.fire();
        }
      }
      await settle();
    },
  };
}

/** Lets pending promise chains (including WebCrypto work) run: a few turns of the event loop. */
export async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

type SocketEvent = "open" | "close" | "error" | "message";

/** The server's end of one return-channel socket, driven by the test. */
export class FakeSocket {
  protocol = "";
  /** The close code the client used, once it closed. */
  closedWith: number | undefined;
  readonly #listeners = new Map<SocketEvent, Array<(event: { data?: unknown }) => void>>();

  constructor(
    readonly url: string,
    readonly protocols: string[],
    readonly openedAt: number,
  ) {}

  addEventListener(type: SocketEvent, listener: (event: { data?: unknown }) => void): void {
    this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), listener]);
  }

  close(code?: number): void {
    this.closedWith ??= code ?? 1005;
  }

  /** The server accepts the upgrade, selecting `protocol`. */
  accept(protocol = "keyferry.v1"): void {
    this.protocol = protocol;
    this.#emit("open");
  }

  /** The server sends one text message. */
  say(message: unknown): void {
    this.#emit("message", { data: typeof message === "string" ? message : JSON.stringify(message) });
  }

  /** The connection fails (a refused upgrade, a reset): error then close, as browsers report it. */
  drop(): void {
    this.#emit("error");
    this.#emit("close");
  }

  #emit(type: SocketEvent, event: { data?: unknown } = {}): void {
    for (const listener of this.#listeners.get(type) ?? []) listener(event);
  }
}

/** A WebSocket factory that records every socket the client opens. */
export function fakeWebSockets(now: () => number) {
  const sockets: FakeSocket[] = [];
  const factory = (url: string, protocols: string[]) => {
    const socket = new FakeSocket(url, protocols, now());
    sockets.push(socket);
    return socket;
  };
  return { sockets, factory, last: () => sockets[sockets.length - 1]! };
}
