import { describe, expect, it } from "vitest";
import { auditUntil, call, lookupAs, newAgent, poll, requestCredential, type Answer } from "./support/api";
import type { DecideAnswerBody } from "../../core/wire";

describe("operator look-up", () => {
  it("shows who asks, what for and until when, and sets a strict session cookie", async () => {
    const { apiKey, operatorEmail, accountId, agentId } = await newAgent();
    const issued = await requestCredential(apiKey);
    const looked = await lookupAs(issued.body.user_code.toLowerCase(), operatorEmail.toUpperCase());
    expect(looked.status).toBe(200);
    expect(looked.body.request).toMatchObject({
      agent: { id: agentId, name: "build-bot", email: "bot@example.com" },
      account_id: accountId,
      description: "Stripe secret key",
      vault_key: "stripe-sk",
      user_code: issued.body.user_code,
      encryption_key: { kty: "EC", crv: "P-256" },
    });
    expect(looked.body.request.public_key).toBeUndefined();
    expect(looked.body.request.encryption_key.d).toBeUndefined();
    expect(Date.parse(looked.body.request.expires_at)).toBeGreaterThan(Date.now());
    const cookie = looked.headers.get("Set-Cookie")!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).toMatch(/Secure/);
  });

  it("claims the request for the first browser: another gets 409 already_claimed, which is no failed attempt", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const issued = await requestCredential(apiKey);
    const first = await lookupAs(issued.body.user_code, operatorEmail);
    expect((await lookupAs(issued.body.user_code, operatorEmail, first.cookie)).status).toBe(200);
    for (let i = 0; i < 6; i++) {
      const other = await lookupAs(issued.body.user_code, operatorEmail);
      expect(other.status).toBe(409);
      expect(other.body.error).toBe("already_claimed");
    }
    expect((await lookupAs(issued.body.user_code, operatorEmail, first.cookie)).status).toBe(200);
  });

  it("counts wrong emails and locks the code at the fifth: the agent sees access_denied", async () => {
    const { apiKey, operatorEmail, accountId } = await newAgent();
    const issued = await requestCredential(apiKey);
    const unknown = await lookupAs("BBBB-BBBB", "attacker@example.com");
    for (let i = 1; i <= 5; i++) {
      // A wrong email is answered exactly as an unknown code (README, "Contract notes").
      const wrong = await lookupAs(issued.body.user_code, "attacker@example.com");
      expect(wrong.status).toBe(404);
      expect(wrong.body).toEqual(unknown.body);
    }
    const locked = await lookupAs(issued.body.user_code, operatorEmail);
    expect(locked.status).toBe(403);
    expect(locked.body.error).toBe("access_denied");
    expect((await poll(issued.body.device_code)).body.error).toBe("access_denied");
    const events = await auditUntil(accountId, (e) => e.some((x) => x.type === "locked"));
    // The four failures before the lock are one event that counts them (README, "Contract notes").
    const failed = events.filter((x) => x.type === "attempt_failed");
    expect(failed).toHaveLength(1);
    expect(failed[0]!.detail).toMatchObject({ count: 4, failed_attempts: 4 });
  });

  it("answers 404 not_found for unknown and malformed codes", async () => {
    for (const code of ["BBBB-BBBB", "AAAA-AAAA", "short", ""]) {
      const answer = await lookupAs(code, "operator@example.com");
      expect(answer.status).toBe(404);
      expect(answer.body.error).toBe("not_found");
    }
  });
});

describe("operator decision", () => {
  async function lookedUp() {
    const { apiKey, operatorEmail } = await newAgent();
    const issued = await requestCredential(apiKey);
    const looked = await lookupAs(issued.body.user_code, operatorEmail);
    return { issued, looked, operatorEmail };
  }

  it("approves once: the approval token is single-use", async () => {
    const { looked } = await lookedUp();
    const body = { approval_token: looked.body.approval_token, decision: "approve", credential_value: "v" };
    expect((await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", { headers: { Cookie: looked.cookie! }, json: body })).body).toEqual({ status: "approved" });
    const again = await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", { headers: { Cookie: looked.cookie! }, json: { ...body, decision: "deny" } });
    expect(again.status).toBe(403);
    expect(again.body.error).toBe("invalid_token");
  });

  it("refuses a decision without the claiming browser's cookie (CSRF, session spying)", async () => {
    const { looked } = await lookedUp();
    const body = { approval_token: looked.body.approval_token, decision: "approve", credential_value: "v" };
    expect((await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", { json: body })).status).toBe(403);
    const otherBrowser = await lookupAs("BBBB-BBBB", "x@example.com"); // gets a cookie of its own
    expect((await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", { headers: { Cookie: otherBrowser.cookie ?? "kf_approval=x" }, json: body })).status).toBe(403);
  });

  it("refuses forged or tampered approval tokens", async () => {
    const { looked } = await lookedUp();
    const [h, p] = (looked.body.approval_token as string).split(".");
    for (const token of [`${h}.${p}.AAAA`, "nope", `${h}.${p}`]) {
      const answer = await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", {
        headers: { Cookie: looked.cookie! },
        json: { approval_token: token, decision: "deny" },
      });
      expect(answer.status).toBe(403);
      expect(answer.body.error).toBe("invalid_token");
    }
  });

  it("names the missing or invalid field", async () => {
    const { looked } = await lookedUp();
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ decision: "approve", credential_value: "v" }, "approval_token"],
      [{ approval_token: looked.body.approval_token, decision: "maybe" }, "decision"],
      [{ approval_token: looked.body.approval_token, decision: "approve" }, "credential_value"],
      [{ approval_token: looked.body.approval_token, decision: "approve", credential_value: "" }, "credential_value"],
      [{ approval_token: looked.body.approval_token, decision: "approve", credential_value: "x".repeat(16_385) }, "credential_value"],
      [{ approval_token: looked.body.approval_token, decision: "approve", credential_value: "é".repeat(8_193) }, "credential_value"],
      [{ approval_token: looked.body.approval_token, decision: "approve", credential_jwe: "not.a.jwe" }, "credential_jwe"],
      [{ approval_token: looked.body.approval_token, decision: "approve", credential_value: "a", credential_jwe: "b" }, "credential"],
    ];
    for (const [json, field] of cases) {
      const answer = await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", { headers: { Cookie: looked.cookie! }, json });
      expect(answer.status, field).toBe(400);
      expect(answer.body.error).toBe("invalid_request");
      expect(answer.body.error_description).toContain(field);
    }
    // Nothing was decided by any of those.
    const ok = await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", {
      headers: { Cookie: looked.cookie! },
      json: { approval_token: looked.body.approval_token, decision: "deny" },
    });
    expect(ok.body).toEqual({ status: "denied" });
  });

  it("answers 413 for a body larger than any decision needs", async () => {
    const { looked } = await lookedUp();
    const answer = await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", {
      headers: { Cookie: looked.cookie! },
      json: { approval_token: looked.body.approval_token, decision: "approve", credential_value: "x".repeat(200_000) },
    });
    expect(answer.status).toBe(413);
    expect(answer.body.error).toBe("invalid_request");
  });
});
