import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { accountStub } from "../../worker/stubs";
import { call, lookupAs, newAgent, normalized, requestCredential, type Answer, type ApiResponse } from "./support/api";
import type { DecideAnswerBody, LookupAnswerBody } from "../../core/wire";

describe("limits", () => {
  it("allows 5 active requests per account; the 6th gets 429 with Retry-After until one ends", async () => {
    const { apiKey, operatorEmail, accountId } = await newAgent();
    const issued = [];
    for (let i = 0; i < 5; i++) {
      const answer = await requestCredential(apiKey);
      expect(answer.status).toBe(200);
      issued.push(answer.body);
    }
    const sixth = await requestCredential(apiKey);
    expect(sixth.status).toBe(429);
    expect(sixth.body.error).toBe("too_many_requests");
    const retryAfter = Number(sixth.headers.get("Retry-After"));
    expect(retryAfter).toBeGreaterThan(500);
    expect(retryAfter).toBeLessThanOrEqual(600);

    // A denial ends a request and frees its slot.
    const looked = await lookupAs(issued[0]!.user_code, operatorEmail);
    await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", { headers: { Cookie: looked.cookie! }, json: { approval_token: looked.body.approval_token, decision: "deny" } });
    expect((await requestCredential(apiKey)).status).toBe(200);
    expect((await requestCredential(apiKey)).status).toBe(429);
    // A slot is its request's `requested` audit row: no table of slots, nothing written when the denial freed one.
    const stored = await runInDurableObject(accountStub(env, accountId), (_i, state) => ({
      tables: state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").toArray().map((row) => row.name),
      requested: state.storage.sql.exec<{ user_code: string }>("SELECT user_code FROM audit WHERE type = 'requested'").toArray().map((row) => row.user_code),
    }));
    expect(stored.tables).not.toContain("active_requests");
    expect(stored.requested).toHaveLength(6);
    expect(stored.requested).toContain(normalized(issued[0]!.user_code));
  });

  it("counts a request made minutes ago: the log is read back over the longest a request lives, not just the minute", async () => {
    const { apiKey, accountId } = await newAgent();
    for (let i = 0; i < 5; i++) expect((await requestCredential(apiKey)).status).toBe(200);
    // As if made 9 minutes ago and expiring in one (REQUEST_TTL_SECONDS is 600 here).
    await runInDurableObject(accountStub(env, accountId), (_i, state) => {
      state.storage.sql.exec("UPDATE audit SET at = at - 540000, expires_at = expires_at - 540000");
    });
    const sixth = await requestCredential(apiKey);
    expect(sixth.status).toBe(429);
    expect(Number(sixth.headers.get("Retry-After"))).toBeLessThanOrEqual(60);
    const listed = await accountStub(env, accountId).consoleRequests();
    expect(listed.reason === "found" && listed.requests).toHaveLength(5);
  });

  it("counts the limit per account, across its agents", async () => {
    const first = await newAgent();
    const second = await newAgent();
    for (let i = 0; i < 5; i++) await requestCredential(first.apiKey);
    expect((await requestCredential(first.apiKey)).status).toBe(429);
    expect((await requestCredential(second.apiKey)).status).toBe(200);
  });

  it("rate-limits approval look-ups per IP address with the Rate Limiting binding", async () => {
    const ip = `198.51.100.${Math.floor(Math.random() * 250)}`;
    let limited: ApiResponse<Answer<LookupAnswerBody>> | undefined;
    for (let i = 0; i < 80 && !limited; i++) {
      const answer = await call<Answer<LookupAnswerBody>>("POST", "/v1/approvals/lookup", {
        headers: { "CF-Connecting-IP": ip },
        json: { user_code: "BBBB-BBBB", email: "x@example.com" },
      });
      if (answer.status === 429) limited = answer;
      else expect(answer.status).toBe(404);
    }
    expect(limited?.body.error).toBe("too_many_requests");
    expect(limited?.headers.get("Retry-After")).toBe("60");
    // Another address is not affected.
    const other = await call<Answer<LookupAnswerBody>>("POST", "/v1/approvals/lookup", {
      headers: { "CF-Connecting-IP": "192.0.2.200" },
      json: { user_code: "BBBB-BBBB", email: "x@example.com" },
    });
    expect(other.status).toBe(404);
  });
});
