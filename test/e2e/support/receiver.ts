// The operator's and the agent's ends of outbound notifications, for end-to-end tests: a local HTTP
// receiver (webhooks, CIBA pings), an independent check of `Keyferry-Signature`, and the .eml files
// that `wrangler dev` writes for each message sent through the `send_email` binding.
import { createHmac, timingSafeEqual } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { sleep } from "../../support/sleep";

export interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body, exactly as sent: signatures are over these bytes. */
  body: string;
  at: number;
}

export interface Receiver {
  /** `http://127.0.0.1:<port>`; append a path of your choice. */
  origin: string;
  received: Received[];
  /** Resolves with the first `count` deliveries matching `match`, or throws after `timeoutMs`. */
  waitFor(count: number, timeoutMs: number, match?: (hit: Received) => boolean): Promise<Received[]>;
  close(): Promise<void>;
}

/** The status to answer the n-th delivery (1-based) with; 204 by default. */
export type Responder = (hit: Received, n: number) => number;


/** A node:http server on 127.0.0.1 (random port) that records every request it gets. */
export async function startReceiver(respond: Responder = () => 204): Promise<Receiver> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const hit: Received = {
        method: req.method ?? "",
        path: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
        at: Date.now(),
      };
      received.push(hit);
      res.writeHead(respond(hit, received.length)).end();
    });
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    origin,
    received,
    async waitFor(count, timeoutMs, match = () => true) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hits = received.filter(match);
        if (hits.length >= count) return hits.slice(0, count);
        if (Date.now() > deadline) throw new Error(`expected ${count} deliveries within ${timeoutMs} ms, got ${hits.length}`);
        await sleep(50);
      }
    },
    async close() {
      server.closeAllConnections();
      await new Promise((done) => server.close(done));
    },
  };
}

/** A loopback port nothing listens on (bound, then released): connections to it are refused. */
export async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((done) => probe.listen(0, "127.0.0.1", done));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((done) => probe.close(done));
  return port;
}

/**
 * Checks `Keyferry-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>` with
 * node:crypto alone, independently of the service's own `core/webhook-signature.ts`, and that the
 * timestamp is within `toleranceSeconds` of now (replay protection as a receiver should apply it).
 */
export function signatureIsValid(secret: string, rawBody: string, header: string | string[] | undefined, toleranceSeconds = 300): boolean {
  if (typeof header !== "string") return false;
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!match) return false;
  const t = Number(match[1]);
  if (Math.abs(Date.now() / 1000 - t) > toleranceSeconds) return false;
  const expected = createHmac("sha256", secret).update(`${t}.${rawBody}`, "utf8").digest();
  return timingSafeEqual(expected, Buffer.from(match[2]!, "hex"));
}

export interface SentEmail {
  path: string;
  headers: Record<string, string>;
  /** The decoded text/plain body. */
  text: string;
}

/** Every `Email: <path>` that `wrangler dev` logged for the send_email binding, oldest first. */
function emailPaths(logs: string): string[] {
  return [...new Set([...logs.matchAll(/Email: (\S+\.eml)\b/g)].map((m) => m[1]!))];
}

/** Parses a single-part message (headers, then a base64 or plain text/plain body). */
function parseEml(raw: string): Omit<SentEmail, "path"> {
  const split = raw.search(/\r?\n\r?\n/);
  const head = split === -1 ? raw : raw.slice(0, split);
  const body = split === -1 ? "" : raw.slice(split).replace(/^\r?\n\r?\n/, "");
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const encoding = (headers["content-transfer-encoding"] ?? "").toLowerCase();
  const text = encoding === "base64" ? Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8") : body;
  return { headers, text };
}

/** Every email `wrangler dev` has logged as sent so far, oldest first (to count them; see `waitForEmail`). */
export async function sentEmails(server: { logs(): string }): Promise<SentEmail[]> {
  const emails: SentEmail[] = [];
  for (const path of emailPaths(server.logs())) {
    if (existsSync(path)) emails.push({ path, ...parseEml(await readFile(path, "utf8")) });
  }
  return emails;
}

/**
 * Waits until `wrangler dev` has logged a sent email whose decoded text satisfies `match` (e.g. it
 * names the vault key of the request under test), and returns it; throws after `timeoutMs`.
 */
export async function waitForEmail(server: { logs(): string }, match: (email: SentEmail) => boolean, timeoutMs: number): Promise<SentEmail> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const path of emailPaths(server.logs())) {
      if (!existsSync(path)) continue;
      const email = { path, ...parseEml(await readFile(path, "utf8")) };
      if (match(email)) return email;
    }
    if (Date.now() > deadline) throw new Error(`no matching email logged within ${timeoutMs} ms`);
    await sleep(100);
  }
}
