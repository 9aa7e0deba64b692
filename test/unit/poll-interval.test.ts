import { describe, expect, it } from "vitest";
import { advertisedInterval, pollIntervalSeconds } from "../../worker/config";

const withInterval = (value: string | undefined) => pollIntervalSeconds({ POLL_INTERVAL_SECONDS: value } as Env);

describe("POLL_INTERVAL_SECONDS", () => {
  it("defaults to 5 s and refuses nonsense", () => {
    for (const value of [undefined, "", "abc", "0", "-1", "0.05", "Infinity"]) expect(withInterval(value)).toBe(5);
  });

  it("takes whole seconds, and a fraction down to 0.1 s (the bench's poll probe)", () => {
    expect(withInterval("1")).toBe(1);
    expect(withInterval("0.25")).toBe(0.25);
  });

  it("tells clients the next whole second (RFC 8628 §3.2), never less than the server enforces", () => {
    expect(advertisedInterval(0.25)).toBe(1);
    expect(advertisedInterval(5)).toBe(5);
    expect(advertisedInterval(5.25)).toBe(6);
  });
});
