/**
 * The soak's webhook receiver (loopback only): fails a share of calls at random with 503, and
 * records each event id's attempts and acknowledgements, so the soak can say that every event
 * arrived and that none came again once acknowledged.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface EventRecord {
  type: string;
  description: string;
  attempts: number;
  acknowledged: number;
}

export interface WebhookReceiver {
  origin: string;
  events: Map<string, EventRecord>;
  calls: { total: number; failed: number; unsigned: number };
  close(): Promise<void>;
}

export async function startWebhookReceiver(failureRate: number): Promise<WebhookReceiver> {
  const events = new Map<string, EventRecord>();
  const calls = { total: 0, failed: 0, unsigned: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      calls.total++;
      if (!/^t=\d+,v1=[0-9a-f]{64}$/.test(String(req.headers["keyferry-signature"] ?? ""))) calls.unsigned++;
      let body: { id?: string; type?: string; request?: { description?: string } } = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        // counted below as an event without an id
      }
      const id = String(req.headers["keyferry-event-id"] ?? body.id ?? "missing");
      const record = events.get(id) ?? { type: body.type ?? "?", description: body.request?.description ?? "", attempts: 0, acknowledged: 0 };
      events.set(id, record);
      record.attempts++;
      const fail = Math.random() < failureRate;
      if (fail) calls.failed++;
      else record.acknowledged++;
      res.writeHead(fail ? 503 : 204).end();
    });
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    events,
    calls,
    async close() {
      server.closeAllConnections();
      await new Promise((done) => server.close(done));
    },
  };
}

/** Per handoff (by its unique description): which lifecycle events were acknowledged. */
export function notificationTally(events: Map<string, EventRecord>, descriptions: Set<string>, expectedTypes: string[]) {
  const seen = new Map<string, Set<string>>();
  let acknowledgedTwice = 0;
  let retried = 0;
  let maxAttempts = 0;
  for (const record of events.values()) {
    if (record.acknowledged > 1) acknowledgedTwice++;
    if (record.attempts > 1) retried++;
    maxAttempts = Math.max(maxAttempts, record.attempts);
    if (record.acknowledged === 0) continue;
    const types = seen.get(record.description) ?? new Set<string>();
    types.add(record.type);
    seen.set(record.description, types);
  }
  let missing = 0;
  for (const description of descriptions) {
    const types = seen.get(description);
    for (const type of expectedTypes) if (!types?.has(type)) missing++;
  }
  return { events: events.size, missing, acknowledged_twice: acknowledgedTwice, retried_events: retried, max_attempts: maxAttempts };
}
