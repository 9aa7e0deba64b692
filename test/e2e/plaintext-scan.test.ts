// The service never holds a credential in the clear at rest (DESIGN.md, "What the service can see"):
// after approval and after delivery, no file wrangler dev persisted contains the value, raw or
// encoded, and after delivery the payload itself is gone.
import { randomBytes } from "node:crypto";
import { CompactEncrypt, compactDecrypt, exportJWK, generateKeyPair, importJWK } from "jose";
import { describe, expect, it } from "vitest";
import { CREDENTIAL_JWE_ALG, CREDENTIAL_JWE_HEADER } from "../../core/jwe";
import { createAccountAndAgent } from "./support/dev-server";
import { distinctiveSecret, filesRevealing } from "./support/plaintext";
import { useDevServer } from "./support/use-dev-server";
import { decide, lookup, pollCredential, pollUntilSettled, requestCredential } from "./support/approval";
import { sleep } from "../support/sleep";

describe("no plaintext credential at rest", () => {
  const server = useDevServer({ vars: { POLL_INTERVAL_SECONDS: "1" } });

  async function expectNoPlaintext(secret: string) {
    const { scanned, revealing } = await filesRevealing(server.persistDir, secret);
    expect(scanned).toBeGreaterThan(0);
    expect(revealing).toEqual([]);
    expect(server.logs()).not.toContain(secret);
  }

  async function issue(description: string, extra: Record<string, unknown> = {}) {
    const agent = await createAccountAndAgent(server);
    const issued = await requestCredential(server, agent.apiKey, { description, vault_key: "canary", ...extra });
    expect(issued.status).toBe(200);
    const found = await lookup(server, { user_code: issued.json.user_code, email: agent.operatorEmail });
    expect(found.res.status).toBe(200);
    return { agent, issued: issued.json, found };
  }

  /** Polls to delivery, checks the payload is then erased, and returns the delivered body. */
  async function deliverOnce(deviceCode: string) {
    const delivered = await pollUntilSettled(server, deviceCode, 1, 30_000);
    expect(delivered.status).toBe(200);
    await sleep(1_200);
    expect(await pollCredential(server, deviceCode)).toMatchObject({ status: 400, json: { error: "invalid_grant" } });
    return delivered.json;
  }

  it("plain mode: the operator sends credential_value", async () => {
    const secret = distinctiveSecret();
    // Control: the scan does see what the request object persists (its description is held in the
    // clear by design), so an empty result below means something.
    const description = `Plain value ${randomBytes(8).toString("hex")}`;
    const { issued, found } = await issue(description);
    const decided = await decide(server, found.cookie, { approval_token: found.res.json.approval_token, decision: "approve", credential_value: secret });
    expect(decided).toMatchObject({ status: 200, json: { status: "approved" } });

    expect((await filesRevealing(server.persistDir, description)).revealing).not.toEqual([]);
    await expectNoPlaintext(secret);
    expect((await deliverOnce(issued.device_code)).credential_value).toBe(secret);
    await expectNoPlaintext(secret);
  });

  it("plain mode, as the page does it: a JWE to the request's encryption_key", async () => {
    const secret = distinctiveSecret();
    const { issued, found } = await issue("Page-encrypted value");
    const request = found.res.json.request;
    expect(request.public_key).toBeUndefined();
    expect(request.encryption_key).toMatchObject({ kty: "EC", crv: "P-256" });
    expect(request.encryption_key).not.toHaveProperty("d");

    const key = await importJWK(request.encryption_key, CREDENTIAL_JWE_ALG);
    const jwe = await new CompactEncrypt(new TextEncoder().encode(secret)).setProtectedHeader(CREDENTIAL_JWE_HEADER).encrypt(key);
    const decided = await decide(server, found.cookie, { approval_token: found.res.json.approval_token, decision: "approve", credential_jwe: jwe });
    expect(decided).toMatchObject({ status: 200, json: { status: "approved" } });

    await expectNoPlaintext(secret);
    expect((await deliverOnce(issued.device_code)).credential_value).toBe(secret);
    await expectNoPlaintext(secret);
  });

  it("end-to-end mode: only the agent's key opens what is delivered", async () => {
    const secret = distinctiveSecret();
    const agentKeys = await generateKeyPair(CREDENTIAL_JWE_ALG, { crv: "P-256", extractable: true });
    const publicJwk = await exportJWK(agentKeys.publicKey);
    const { issued, found } = await issue("End-to-end value", { public_key: publicJwk });
    const request = found.res.json.request;
    expect(request.public_key).toMatchObject({ kty: "EC", crv: "P-256", x: publicJwk.x, y: publicJwk.y });
    expect(request.encryption_key).toMatchObject({ x: publicJwk.x, y: publicJwk.y });

    const key = await importJWK(request.encryption_key, CREDENTIAL_JWE_ALG);
    const jwe = await new CompactEncrypt(new TextEncoder().encode(secret)).setProtectedHeader(CREDENTIAL_JWE_HEADER).encrypt(key);
    await decide(server, found.cookie, { approval_token: found.res.json.approval_token, decision: "approve", credential_jwe: jwe });

    await expectNoPlaintext(secret);
    const delivered = await deliverOnce(issued.device_code);
    expect(delivered.credential_value).toBeUndefined();
    expect(typeof delivered.credential_jwe).toBe("string");
    const opened = await compactDecrypt(delivered.credential_jwe ?? "", agentKeys.privateKey, {
      keyManagementAlgorithms: [CREDENTIAL_JWE_ALG],
      contentEncryptionAlgorithms: [CREDENTIAL_JWE_HEADER.enc],
    });
    expect(new TextDecoder().decode(opened.plaintext)).toBe(secret);
    await expectNoPlaintext(secret);
  });
});
