import { describe, expect, it } from "vitest";
import { BASE_DELAY_MS, MAX_DELAY_MS, MAX_RETRY_AFTER_MS, outcomeOf, parseRetryAfter, retryDelayMs } from "../../durable-objects/account/notify/outbox";

describe("outbox backoff", () => {
  it("doubles from BASE to the cap, each delay scaled by a jitter factor in [0.5, 1.5)", () => {
    expect([1, 2, 3, 4].map((n) => retryDelayMs(n, null, () => 0.5))).toEqual([1, 2, 4, 8].map((k) => k * BASE_DELAY_MS));
    expect(retryDelayMs(30, null, () => 0.5)).toBe(MAX_DELAY_MS);
    expect(retryDelayMs(1, null, () => 0)).toBe(BASE_DELAY_MS / 2);
    expect(retryDelayMs(1, null, () => 0.999)).toBeLessThan(BASE_DELAY_MS * 1.5);
  });

  it("waits at least as long as Retry-After, up to an hour", () => {
    expect(retryDelayMs(1, 120_000, () => 0.5)).toBe(120_000);
    expect(retryDelayMs(1, 1_000, () => 0.5)).toBe(BASE_DELAY_MS);
    expect(retryDelayMs(1, 10 * MAX_RETRY_AFTER_MS, () => 0.5)).toBe(MAX_RETRY_AFTER_MS);
  });

  it("reads Retry-After as seconds or an HTTP date (RFC 9110 §10.2.3)", () => {
    const now = Date.UTC(2026, 10, 28, 12, 0, 0);
    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter(new Date(now + 30_000).toUTCString(), now)).toBe(30_000);
    expect(parseRetryAfter(new Date(now - 30_000).toUTCString(), now)).toBe(0);
    expect(parseRetryAfter("soon", now)).toBeNull();
    expect(parseRetryAfter(null, now)).toBeNull();
  });

  it("acknowledges a 2xx, retries 408, 429 and 5xx, and is final on any other status", () => {
    expect(outcomeOf(200, null).reason).toBe("acknowledged");
    expect(outcomeOf(204, null).reason).toBe("acknowledged");
    for (const status of [408, 429, 500, 502, 503, 504]) expect(outcomeOf(status, null).reason).toBe("retry");
    for (const status of [301, 302, 400, 401, 403, 404, 410, 413]) expect(outcomeOf(status, null).reason).toBe("final");
  });
});
