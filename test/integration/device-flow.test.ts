import { describe, expect, it } from "vitest";
import { approve, newAgent, poll, requestCredential } from "./support/api";

describe("device flow through the worker and its Durable Objects", () => {
  it("delivers an approved credential exactly once, then answers invalid_grant", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const issued = await requestCredential(apiKey);
    expect(issued.status).toBe(200);
    expect(issued.body.user_code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    expect(issued.body.verification_uri).toBe("https://keyferry.test/approve");
    expect(issued.body.expires_in).toBe(600);
    expect(issued.body.interval).toBe(5);
    expect(issued.headers.get("Cache-Control")).toContain("no-store");

    const pending = await poll(issued.body.device_code);
    expect(pending.body.error).toBe("authorization_pending");

    const { looked, decided } = await approve(issued.body.user_code, operatorEmail, "sk_live_123");
    expect(looked.status).toBe(200);
    expect(decided.body).toEqual({ status: "approved" });

    // The next poll comes sooner than the interval after the previous one: slow_down.
    const early = await poll(issued.body.device_code);
    expect(early.body.error).toBe("slow_down");
  });
});
