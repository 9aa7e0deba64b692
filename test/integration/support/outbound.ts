import { env } from "cloudflare:workers";
import { vi } from "vitest";
import { sleep } from "../../support/sleep";

/**
 * Outbound POSTs the worker made (webhooks, CIBA pings), answered by `reply`; mocked in tests only.
 * `only`: record just the URLs it accepts; others (a notification of an earlier test, sent late by
 * its account's outbox) are answered 204 and not recorded.
 */
export function captureOutbound(
  reply: (request: Request, attempt: number) => Response | Promise<Response> = () => new Response(null, { status: 204 }),
  only: (url: string) => boolean = () => true,
) {
  const sent: Array<{ url: string; headers: Headers; body: string }> = [];
  const original = globalThis.fetch;
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    if (!request.url.startsWith("https://hooks.example.com/")) return original(input, init);
    if (!only(request.url)) return new Response(null, { status: 204 });
    sent.push({ url: request.url, headers: request.headers, body: await request.text() });
    return reply(request, sent.length);
  });
  return sent;
}

/**
 * Emails the worker sent through the send_email binding. Operator invitations (one per new account)
 * are left out unless `invitations` is set: these tests count the notices a request causes.
 */
export function captureEmail(opts: { invitations?: boolean } = {}) {
  const sent: Array<{ from: string; to: string; raw: string }> = [];
  vi.spyOn(env.EMAIL, "send").mockImplementation(async (message) => {
    // Miniflare's local EmailMessage keeps the MIME text under this key.
    const raw = await new Response((message as unknown as Record<string, ReadableStream>)["EmailMessage::raw"]).text();
    if (!opts.invitations && /^Subject: Your Keyferry operator invitation\r?$/m.test(raw)) return { messageId: "<test@local>" };
    sent.push({ from: String(message.from), to: String(message.to), raw });
    return { messageId: "<test@local>" };
  });
  return sent;
}

export async function until<T>(read: () => T | undefined, what: string): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const value = read();
    if (value !== undefined) return value;
    await sleep(25);
  }
  throw new Error(`never saw ${what}`);
}

export const decodeBody = (raw: string) =>
  new TextDecoder().decode(Uint8Array.from(atob(raw.split("\r\n\r\n")[1]!.replace(/\r\n/g, "")), (c) => c.charCodeAt(0)));

