import { RETURN_CHANNEL_PROTOCOL, WAIT_DEVICE_CODE_PREFIX, WAIT_DPOP_PREFIX } from "../../core/wire";
import { dpopProof, type DpopKey } from "./dpop";
import type { Clock } from "./sleep";

/** The part of a WebSocket the return channel uses: the standard browser API (Node 22+, Bun, Deno, Workers). */
export interface WebSocketLike {
  readonly protocol: string;
  addEventListener(type: "open" | "close" | "error" | "message", listener: (event: { data?: unknown }) => void): void;
  close(code?: number, reason?: string): void;
}

/** Opens a WebSocket offering `protocols`; inject one where the runtime's global WebSocket is not wanted. */
export type WebSocketFactory = (url: string, protocols: string[]) => WebSocketLike;

/** What the server said on the socket: the operator decided (the next poll is served at once), or the TTL passed. */
export type ChannelNews = "decided" | "expired";

export const SUBPROTOCOL = RETURN_CHANNEL_PROTOCOL;
/** First reconnect delay after a drop; doubles on each failure up to the maximum. */
export const RECONNECT_MIN_MS = 1000;
export const RECONNECT_MAX_MS = 30_000;

/** The global WebSocket as a factory, or `undefined` where the runtime has none (Node 20). */
export function globalWebSocketFactory(): WebSocketFactory | undefined {
  const Ctor = (globalThis as { WebSocket?: new (url: string, protocols: string[]) => WebSocketLike }).WebSocket;
  return typeof Ctor === "function" ? (url, protocols) => new Ctor(url, protocols) : undefined;
}

/** `GET /v1/credentials/wait` on the API's origin, as ws(s). */
export function waitUrl(baseUrl: string): string {
  return `${baseUrl.replace(/^http/, "ws")}/v1/credentials/wait`;
}

/**
 * One wait's return channel (sdk/README.md, "credentials.waitForApproval()"): a WebSocket offering `keyferry.v1` and
 * `keyferry.device-code.<code>` (the code never goes in the URL, which proxies and logs keep), and
 * for a key-bound request `keyferry.dpop.<proof>`, a fresh DPoP proof for each connection (RFC 9449
 * §4: a browser's WebSocket cannot send the `DPoP` header). It
 * only tells the wait when to poll; the credential itself always comes from the poll. A drop or
 * refusal schedules a reconnect with exponential backoff; meanwhile the wait polls as before.
 * Nothing here is shared between waits.
 */
export class ReturnChannel {
  readonly #factory: WebSocketFactory;
  readonly #url: string;
  readonly #protocols: string[];
  readonly #now: Clock;
  /** The request's DPoP key, for a bound request; and the URL its proofs name (`htu`: the HTTP one). */
  readonly #dpop: { key: DpopKey; htu: string } | undefined;
  #socket: WebSocketLike | undefined;
  #state: "closed" | "connecting" | "open" = "closed";
  #news: ChannelNews | undefined;
  /** A decision or expiry arrived, the server does not speak our protocol, or the wait ended: never reconnect. */
  #final = false;
  #backoff = RECONNECT_MIN_MS;
  #reconnectAt = Number.NEGATIVE_INFINITY;
  #openedAt = 0;
  readonly #waiters = new Set<() => void>();

  constructor(factory: WebSocketFactory, baseUrl: string, deviceCode: string, now: Clock, dpop?: DpopKey) {
    this.#factory = factory;
    this.#url = waitUrl(baseUrl);
    this.#protocols = [SUBPROTOCOL, `${WAIT_DEVICE_CODE_PREFIX}${deviceCode}`];
    this.#now = now;
    this.#dpop = dpop && { key: dpop, htu: `${baseUrl}/v1/credentials/wait` };
  }

  get open(): boolean {
    return this.#state === "open";
  }

  /** When the next connection attempt is due (`Infinity` while connecting, open, or finished). */
  get reconnectAt(): number {
    return this.#state === "closed" && !this.#final ? this.#reconnectAt : Number.POSITIVE_INFINITY;
  }

  /** The server's news since the last call, once. */
  take(): ChannelNews | undefined {
    const news = this.#news;
    this.#news = undefined;
    return news;
  }

  /** Connects when closed and a reconnect is due, as long as the request lives. */
  maintain(liveUntil: number): void {
    const now = this.#now();
    if (this.#state !== "closed" || this.#final || now < this.#reconnectAt || now >= liveUntil) return;
    this.#connect();
  }

  /** Resolves at the next change (open, news, drop); `cancel` forgets the waiter. */
  changed(): { promise: Promise<void>; cancel: () => void } {
    let waiter!: () => void;
    const promise = new Promise<void>((resolve) => (waiter = resolve));
    this.#waiters.add(waiter);
    return { promise, cancel: () => this.#waiters.delete(waiter) };
  }

  /** Ends the channel for good (the wait returned or failed). */
  close(): void {
    this.#final = true;
    const socket = this.#socket;
    this.#socket = undefined;
    this.#state = "closed";
    try {
      socket?.close(1000);
    } catch {
      // already closing
    }
  }

  #connect(): void {
    const dpop = this.#dpop;
    if (!dpop) {
      this.#open(this.#protocols);
      return;
    }
    this.#state = "connecting";
    dpopProof(dpop.key, "GET", dpop.htu, this.#now()).then(
      (proof) => {
        // The wait may have ended while the proof was signed.
        if (this.#final || this.#state !== "connecting" || this.#socket) return;
        this.#open([...this.#protocols, `${WAIT_DPOP_PREFIX}${proof}`]);
      },
      () => {
        if (this.#final) return;
        this.#dropped();
        this.#notify();
      },
    );
  }

  #open(protocols: string[]): void {
    let socket: WebSocketLike;
    try {
      socket = this.#factory(this.#url, protocols);
    } catch {
      this.#dropped();
      return;
    }
    this.#socket = socket;
    this.#state = "connecting";
    const mine = () => this.#socket === socket;
    socket.addEventListener("open", () => {
      if (!mine()) return;
      if (socket.protocol !== SUBPROTOCOL) {
        // Not a Keyferry return channel (a proxy, another server): polling alone will do.
        this.close();
        this.#notify();
        return;
      }
      this.#state = "open";
      this.#openedAt = this.#now();
      this.#notify();
    });
    socket.addEventListener("message", (event) => {
      if (!mine()) return;
      const news = parseNews(event.data);
      if (!news) return;
      this.#news = news;
      this.close();
      this.#notify();
    });
    const lost = () => {
      if (!mine()) return;
      this.#socket = undefined;
      this.#dropped();
      this.#notify();
    };
    socket.addEventListener("close", lost);
    socket.addEventListener("error", lost);
  }

  #dropped(): void {
    const now = this.#now();
    // A connection that held for a while was healthy: start the backoff over.
    if (this.#state === "open" && now - this.#openedAt >= RECONNECT_MAX_MS) this.#backoff = RECONNECT_MIN_MS;
    this.#state = "closed";
    this.#reconnectAt = now + this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, RECONNECT_MAX_MS);
  }

  #notify(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }
}

/** `{"type": "decided", "status": …}` or `{"type": "expired"}`; anything else is ignored. */
function parseNews(data: unknown): ChannelNews | undefined {
  if (typeof data !== "string" || data.length > 1024) return undefined;
  let message: unknown;
  try {
    message = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (typeof message !== "object" || message === null) return undefined;
  const type = (message as { type?: unknown }).type;
  return type === "decided" || type === "expired" ? type : undefined;
}
