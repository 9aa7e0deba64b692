// The SDK's return channel (sdk/README.md, "credentials.waitForApproval()"): it waits on a WebSocket, polls once at the
// decision, fails at `expired`, falls back to polling while the socket is down and reconnects with
// backoff while the request lives; the caller's AbortSignal ends everything. A fake socket and a
// clock that only moves when the test says so: no real waiting.
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader } from "jose";
import { describe, expect, it, vi } from "vitest";
import { createClient } from "../../sdk/src/index";
import { globalWebSocketFactory, RECONNECT_MAX_MS } from "../../sdk/src/return-channel";
import { failure, fakeFetch, fakeWebSockets, json, manualClock, oauthError, settle, type Exchange } from "./sdk-fakes";

const BASE_URL = "https://keyferry.test";
const DEVICE_CODE = "kfd1.WDJBMJHT.1767225600000.secret.tag";
const REQUEST = { description: "Stripe key", vaultKey: "stripe-sk", endToEnd: false };
const INTERVAL_S = 5;
const TTL_S = 600;

/** An agent with a fake API whose request the test decides, a fake socket factory and a manual clock. */
function agent() {
  const clock = manualClock();
  const ws = fakeWebSockets(clock.now);
  let state: "pending" | "approved" | "denied" | "expired" | "delivered" = "pending";
  const polls: Exchange[] = [];
  const pollTimes: number[] = [];
  const api = fakeFetch(({ path }) => {
    if (path === "/v1/credentials/request") {
      return json(200, { device_code: DEVICE_CODE, user_code: "WDJB-MJHT", verification_uri: `${BASE_URL}/approve`, expires_in: TTL_S, interval: INTERVAL_S });
    }
    if (path !== "/v1/credentials/poll") return oauthError("not_found", 404);
    pollTimes.push(clock.now());
    switch (state) {
      case "approved":
        state = "delivered";
        return json(200, { vault_key: "stripe-sk", description: "Stripe key", credential_value: "sk_live_123" });
      case "denied":
        return oauthError("access_denied");
      case "expired":
        return oauthError("expired_token");
      case "delivered":
        return oauthError("invalid_grant");
      default:
        return oauthError("authorization_pending");
    }
  });
  const ferry = createClient({ baseUrl: BASE_URL, apiKey: "kf_agent", fetch: api.fetch, webSocket: ws.factory, now: clock.now, sleep: clock.sleep });
  const decide = (next: typeof state) => (state = next);
  return { ferry, clock, ws, api, polls, pollTimes, decide };
}

/** A promise's outcome without awaiting it, so the test can drive events meanwhile. */
function track<T>(promise: Promise<T>) {
  const result: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    (value) => Object.assign(result, { settled: true, value }),
    (error: unknown) => Object.assign(result, { settled: true, error }),
  );
  return result;
}

describe("sdk return channel", () => {
  it("offers keyferry.v1, the device code and a DPoP proof as subprotocols, polls nothing while open, and polls once at the decision", async () => {
    const { ferry, clock, ws, api, pollTimes, decide } = agent();
    const req = await ferry.credentials.request(REQUEST);
    const t0 = clock.now();
    const wait = track(ferry.credentials.waitForApproval(req.deviceCode));
    await settle();
    expect(ws.sockets).toHaveLength(1);
    const socket = ws.last();
    // The code travels only as a subprotocol: never in the URL, which proxies and logs keep.
    expect(socket.url).toBe("wss://keyferry.test/v1/credentials/wait");
    expect(socket.protocols).toEqual(["keyferry.v1", `keyferry.device-code.${DEVICE_CODE}`, expect.stringMatching(/^keyferry\.dpop\./)]);
    // The request is bound to a DPoP key (the SDK's default): the wait proves it, for GET on the wait's HTTP URL (RFC 9449 §4.2).
    const proof = socket.protocols[2]!.slice("keyferry.dpop.".length);
    const header = decodeProtectedHeader(proof);
    expect(header.typ).toBe("dpop+jwt");
    expect(await calculateJwkThumbprint(header.jwk!)).toBe((api.exchanges[0]!.body as { dpop_jkt: string }).dpop_jkt);
    expect(decodeJwt(proof)).toMatchObject({ htm: "GET", htu: "https://keyferry.test/v1/credentials/wait", iat: Math.floor(clock.now() / 1000) });
    socket.accept();
    await settle();

    // Minutes pass with the socket open: not one poll.
    for (let i = 0; i < 5; i++) await clock.advance(60_000);
    expect(pollTimes).toHaveLength(0);
    expect(wait.settled).toBe(false);

    decide("approved");
    socket.say({ type: "decided", status: "approved" });
    await vi.waitFor(() => expect(wait.settled).toBe(true));
    expect(wait.value).toEqual({ vaultKey: "stripe-sk", description: "Stripe key", credentialValue: "sk_live_123" });
    expect(pollTimes).toEqual([t0 + 300_000]); // at once, not at the next interval
    expect(socket.closedWith).toBe(1000);
    expect(ws.sockets).toHaveLength(1);
  });

  it("reports a denial through the poll that follows the decision", async () => {
    const { ferry, ws, pollTimes, decide } = agent();
    const req = await ferry.credentials.request(REQUEST);
    const wait = failure(ferry.credentials.waitForApproval(req.deviceCode));
    await settle();
    ws.last().accept();
    decide("denied");
    ws.last().say({ type: "decided", status: "denied" });
    expect((await wait).code).toBe("ACCESS_DENIED");
    expect(pollTimes).toHaveLength(1);
  });

  it("fails with EXPIRED_TOKEN on the socket's expired, without a poll, and forgets the request", async () => {
    const { ferry, ws, pollTimes } = agent();
    const req = await ferry.credentials.request(REQUEST);
    const wait = failure(ferry.credentials.waitForApproval(req.deviceCode));
    await settle();
    ws.last().accept();
    ws.last().say("not json"); // ignored
    ws.last().say({ type: "hello" }); // ignored
    ws.last().say({ type: "expired" });
    expect((await wait).code).toBe("EXPIRED_TOKEN");
    expect(pollTimes).toHaveLength(0);
    expect(ws.last().closedWith).toBe(1000);
  });

  it("polls meanwhile and reconnects with doubling backoff while the socket cannot connect; the decision then arrives on the socket", async () => {
    const { ferry, clock, ws, pollTimes, decide } = agent();
    const req = await ferry.credentials.request(REQUEST);
    const t0 = clock.now();
    const wait = track(ferry.credentials.waitForApproval(req.deviceCode));
    await settle();
    // Refused (a server without the route, a proxy): each attempt fails at once.
    for (let second = 0; second < 40; second++) {
      ws.last().drop();
      await clock.advance(1000);
    }
    const attempts = ws.sockets.map((s) => s.openedAt - t0);
    expect(attempts.slice(0, 5)).toEqual([0, 1000, 3000, 7000, 15000]);
    for (let i = 1; i < attempts.length; i++) expect(attempts[i]! - attempts[i - 1]!).toBeLessThanOrEqual(RECONNECT_MAX_MS);
    // Each connection carries a proof of its own (a jti works once, RFC 9449 §11.1).
    expect(new Set(ws.sockets.map((s) => s.protocols[2])).size).toBe(ws.sockets.length);
    // Polling went on at the interval all along, so a decision is never missed.
    expect(pollTimes.map((t) => t - t0)).toEqual([5000, 10000, 15000, 20000, 25000, 30000, 35000, 40000]);

    // The channel comes back: no more polls until the decision.
    await clock.advance(RECONNECT_MAX_MS);
    const socket = ws.last();
    socket.accept();
    await settle();
    const pollsBefore = pollTimes.length;
    await clock.advance(60_000);
    expect(pollTimes).toHaveLength(pollsBefore);
    decide("approved");
    socket.say({ type: "decided", status: "approved" });
    await vi.waitFor(() => expect(wait.settled).toBe(true));
    expect(wait.value).toMatchObject({ credentialValue: "sk_live_123" });
  });

  it("after a drop polls when the interval allows, catching a decision made while the socket was down", async () => {
    const { ferry, clock, ws, pollTimes, decide } = agent();
    const req = await ferry.credentials.request(REQUEST);
    const t0 = clock.now();
    const wait = track(ferry.credentials.waitForApproval(req.deviceCode));
    await settle();
    ws.last().accept();
    await clock.advance(120_000);
    ws.last().drop();
    decide("approved"); // the announcement is lost with the connection
    await settle();
    await vi.waitFor(() => expect(wait.settled).toBe(true));
    expect(wait.value).toMatchObject({ credentialValue: "sk_live_123" });
    expect(pollTimes.map((t) => t - t0)).toEqual([120_000]);
  });

  it("stops reconnecting once the request has expired; the poll then says so", async () => {
    const { ferry, clock, ws, pollTimes, decide } = agent();
    const req = await ferry.credentials.request(REQUEST);
    const wait = failure(ferry.credentials.waitForApproval(req.deviceCode));
    await settle();
    ws.last().accept();
    await clock.advance(TTL_S * 1000 - 1000);
    ws.last().drop();
    await clock.advance(1000); // the reconnect would be due now, at the request's expiry
    const attempts = ws.sockets.length;
    decide("expired");
    await clock.advance(INTERVAL_S * 1000);
    expect((await wait).code).toBe("EXPIRED_TOKEN");
    expect(ws.sockets).toHaveLength(attempts);
    expect(attempts).toBe(1);
    expect(pollTimes.length).toBeGreaterThan(0);
  });

  it("leaves a server that does not select keyferry.v1 alone and polls", async () => {
    const { ferry, clock, ws, pollTimes, decide } = agent();
    const req = await ferry.credentials.request(REQUEST);
    const wait = track(ferry.credentials.waitForApproval(req.deviceCode));
    await settle();
    ws.last().accept("");
    await settle();
    expect(ws.last().closedWith).toBe(1000);
    await clock.advance(INTERVAL_S * 1000);
    decide("approved");
    await clock.advance(INTERVAL_S * 1000);
    await vi.waitFor(() => expect(wait.settled).toBe(true));
    expect(wait.value).toMatchObject({ credentialValue: "sk_live_123" });
    expect(ws.sockets).toHaveLength(1);
    expect(pollTimes).toHaveLength(2);
  });

  it("stops with ABORTED at once while waiting on the open socket, and closes it", async () => {
    const { ferry, ws, pollTimes } = agent();
    const controller = new AbortController();
    const req = await ferry.credentials.request(REQUEST);
    const wait = failure(ferry.credentials.waitForApproval(req.deviceCode, { signal: controller.signal }));
    await settle();
    ws.last().accept();
    await settle();
    controller.abort();
    expect((await wait).code).toBe("ABORTED");
    expect(ws.last().closedWith).toBe(1000);
    expect(pollTimes).toHaveLength(0);
  });

  it("stops with ABORTED while the socket reconnects, opening no more sockets", async () => {
    const { ferry, clock, ws } = agent();
    const controller = new AbortController();
    const req = await ferry.credentials.request(REQUEST);
    const wait = failure(ferry.credentials.waitForApproval(req.deviceCode, { signal: controller.signal }));
    await settle();
    ws.last().drop();
    await settle();
    controller.abort();
    expect((await wait).code).toBe("ABORTED");
    await clock.advance(60_000);
    expect(ws.sockets).toHaveLength(1);
    expect(clock.sleepers()).toBe(0);
  });

  it("gives up with TIMEOUT at the deadline while the socket is open", async () => {
    const { ferry, clock, ws, pollTimes } = agent();
    const req = await ferry.credentials.request(REQUEST);
    const wait = track(ferry.credentials.waitForApproval(req.deviceCode, { timeout: 30_000 }));
    await settle();
    ws.last().accept();
    await clock.advance(29_000);
    expect(wait.settled).toBe(false);
    await clock.advance(1000);
    await vi.waitFor(() => expect(wait.settled).toBe(true));
    expect((wait.error as { code?: string }).code).toBe("TIMEOUT");
    expect(ws.last().closedWith).toBe(1000);
    expect(pollTimes).toHaveLength(0);
  });

  it("polls only with returnChannel: false, with webSocket: false, or with a custom fetch and no factory", async () => {
    const { ferry, ws } = agent();
    const req = await ferry.credentials.request(REQUEST);
    const wait = failure(ferry.credentials.waitForApproval(req.deviceCode, { returnChannel: false, timeout: 0 }));
    expect((await wait).code).toBe("TIMEOUT");
    expect(ws.sockets).toHaveLength(0);

    const api = fakeFetch(() => oauthError("authorization_pending"));
    for (const webSocket of [false, undefined] as const) {
      const clock = manualClock();
      const polling = createClient({ baseUrl: BASE_URL, apiKey: "kf", fetch: api.fetch, now: clock.now, sleep: clock.sleep, ...(webSocket === false ? { webSocket } : {}) });
      const waiting = failure(polling.credentials.waitForApproval("someone-elses-code", { timeout: 1000 }));
      await settle();
      expect(api.exchanges.at(-1)?.path).toBe("/v1/credentials/poll");
      await clock.advance(1000);
      expect((await waiting).code).toBe("TIMEOUT");
    }
  });

  it("finds no factory where the runtime has no global WebSocket (Node 20)", () => {
    expect(globalWebSocketFactory()).toBeTypeOf("function");
    vi.stubGlobal("WebSocket", undefined);
    try {
      expect(globalWebSocketFactory()).toBeUndefined();
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
