import { compactDecrypt, exportJWK, generateKeyPair } from "jose";
import { describe, expect, it } from "vitest";
import { approve, call, encryptForRequest, lookupAs, newAgent, poll, requestCredential, type Answer } from "./support/api";
import { forgeHandle } from "./support/forgery";
import type { DecideAnswerBody } from "../../core/wire";

describe("device flow through the worker and its Durable Objects", () => {
  it("issues an RFC 8628 §3.2 response with a formatted user code", async () => {
    const { apiKey } = await newAgent();
    const issued = await requestCredential(apiKey);
    expect(issued.status).toBe(200);
    expect(issued.headers.get("Cache-Control")).toContain("no-store");
    const code = issued.body.user_code;
    expect(code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    expect(issued.body).toMatchObject({
      verification_uri: "https://keyferry.test/approve",
      verification_uri_complete: `https://keyferry.test/approve?user_code=${code}`,
      expires_in: 600,
      interval: 5,
      message: `Ask your operator to visit https://keyferry.test/approve and enter code ${code}`,
    });
    expect(typeof issued.body.device_code).toBe("string");
  });

  it("answers authorization_pending, then slow_down for an early poll, raising the interval for good", async () => {
    const { apiKey } = await newAgent();
    const issued = await requestCredential(apiKey);
    expect((await poll(issued.body.device_code)).body.error).toBe("authorization_pending");
    const early = await poll(issued.body.device_code);
    expect(early.status).toBe(400);
    expect(early.body).toEqual({ error: "slow_down", error_description: expect.stringContaining("10 seconds") });
    expect((await poll(issued.body.device_code)).body.error_description).toContain("15 seconds");
  });

  it("delivers a plain-mode credential exactly once to racing polls, then invalid_grant", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const issued = await requestCredential(apiKey);
    const { decided } = await approve(issued.body.user_code, operatorEmail, "sk_live_exactly_once");
    expect(decided.body).toEqual({ status: "approved" });

    const racing = await Promise.all(Array.from({ length: 8 }, () => poll(issued.body.device_code)));
    const delivered = racing.filter((r) => r.status === 200);
    expect(delivered).toHaveLength(1);
    expect(delivered[0]!.body).toEqual({ vault_key: "stripe-sk", description: "Stripe secret key", credential_value: "sk_live_exactly_once" });
    for (const other of racing.filter((r) => r.status !== 200)) expect(other.body.error).toBe("invalid_grant");
    expect((await poll(issued.body.device_code)).body.error).toBe("invalid_grant");
  });

  it("keeps the value exact: unicode, whitespace and 16 KiB", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    for (const value of [" spaced\ttabs\nnewline ", "ключ-🔑", "x".repeat(16_384)]) {
      const issued = await requestCredential(apiKey);
      await approve(issued.body.user_code, operatorEmail, value);
      expect((await poll(issued.body.device_code)).body.credential_value).toBe(value);
    }
  });

  it("end-to-end mode returns the JWE untouched for the agent's own key", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const { publicKey, privateKey } = await generateKeyPair("ECDH-ES+A256KW", { crv: "P-256", extractable: true });
    const jwk = await exportJWK(publicKey);
    const issued = await requestCredential(apiKey, { public_key: jwk });
    const looked = await lookupAs(issued.body.user_code, operatorEmail);
    expect(looked.body.request.public_key).toEqual({ kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y });
    expect(looked.body.request.encryption_key).toEqual(looked.body.request.public_key);
    // The service never sees an end-to-end credential: a plaintext value is refused, naming the field.
    const refused = await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", {
      headers: { Cookie: looked.cookie! },
      json: { approval_token: looked.body.approval_token, decision: "approve", credential_value: "e2e-secret" },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe("invalid_request");
    expect(refused.body.error_description).toMatch(/^credential_value: /);
    // ...and changes nothing: the same token then approves with the browser's JWE.
    const jwe = await encryptForRequest(looked.body.request.encryption_key, "e2e-secret");
    const decided = await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", {
      headers: { Cookie: looked.cookie! },
      json: { approval_token: looked.body.approval_token, decision: "approve", credential_jwe: jwe },
    });
    expect(decided.status).toBe(200);
    const delivered = await poll(issued.body.device_code);
    expect(Object.keys(delivered.body).sort()).toEqual(["credential_jwe", "description", "vault_key"]);
    const { plaintext } = await compactDecrypt(delivered.body.credential_jwe!, privateKey);
    expect(new TextDecoder().decode(plaintext)).toBe("e2e-secret");
  });

  it("accepts X25519 agent keys", async () => {
    const { apiKey } = await newAgent();
    const { publicKey } = await generateKeyPair("ECDH-ES+A256KW", { crv: "X25519", extractable: true });
    const issued = await requestCredential(apiKey, { public_key: await exportJWK(publicKey) });
    expect(issued.status).toBe(200);
  });

  it("answers access_denied after the operator denies", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const issued = await requestCredential(apiKey);
    const looked = await lookupAs(issued.body.user_code, operatorEmail);
    const denied = await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", {
      headers: { Cookie: looked.cookie! },
      json: { approval_token: looked.body.approval_token, decision: "deny" },
    });
    expect(denied.body).toEqual({ status: "denied" });
    expect((await poll(issued.body.device_code)).body.error).toBe("access_denied");
  });

  it("drops forged and malformed device codes with invalid_grant", async () => {
    const { apiKey } = await newAgent();
    const issued = await requestCredential(apiKey);
    // The request's object would take the forgery; only the worker's MAC check refuses it.
    const forged = await forgeHandle(issued.body.device_code);
    for (const code of [forged, "", "not-a-code", "a.b.c", "x".repeat(5000)]) {
      const answer = await poll(code);
      expect(answer.status).toBe(400);
      expect(answer.body.error).toBe("invalid_grant");
    }
  });
});
