// The agent SDK against a real `wrangler dev`: request → operator approval through the page's JSON
// calls (the credential encrypted in Node with jose, as the page does in the browser) →
// waitForApproval → the client-side encrypted vault.
import { randomBytes } from "node:crypto";
import { CompactEncrypt, base64url, importJWK, type JWK } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { keyFingerprint } from "../../core/fingerprint";
import { createClient, KeyferryError, type KeyferryClient } from "../../sdk/src/index";
import { decide, lookup } from "./support/approval";
import { api, createAccountAndAgent, type DevServer } from "./support/dev-server";
import { useDevServer } from "./support/use-dev-server";

/** What the approval page does in the operator's browser: a JWE to the request's encryption key. */
async function encryptForRequest(value: string, encryptionKey: JWK): Promise<string> {
  return new CompactEncrypt(new TextEncoder().encode(value))
    .setProtectedHeader({ alg: "ECDH-ES+A256KW", enc: "A256GCM" })
    .encrypt(await importJWK(encryptionKey, "ECDH-ES+A256KW"));
}

/** Looks the request up with its code and the operator email (keeping the __Host-kf_approval cookie), then decides. */
async function operator(server: DevServer, userCode: string, email: string, decision: "approve" | "deny", value?: string) {
  const found = await lookup(server, { user_code: userCode, email });
  expect(found.res.status, found.res.text).toBe(200);
  expect(found.cookie).toMatch(/^__Host-kf_approval=/);
  const request = found.res.json.request;
  const body: Record<string, unknown> = { approval_token: found.res.json.approval_token, decision };
  if (decision === "approve") body.credential_jwe = await encryptForRequest(value!, request.encryption_key);
  const decided = await decide(server, found.cookie, body);
  expect(decided.status, decided.text).toBe(200);
  return request;
}

function settle<T>(promise: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

describe("agent SDK against wrangler dev", () => {
  const server = useDevServer({ vars: { POLL_INTERVAL_SECONDS: "1" } });
  let ids: Awaited<ReturnType<typeof createAccountAndAgent>>;
  let ferry: KeyferryClient;

  beforeAll(async () => {
    ids = await createAccountAndAgent(server, { agentName: "sdk-agent", agentEmail: "sdk@example.com" });
    ferry = createClient({ baseUrl: server.url, apiKey: ids.apiKey, masterSeed: randomBytes(32) });
  });

  it("delivers an end-to-end encrypted credential and keeps it in the vault as ciphertext only", async () => {
    const secret = `sk-e2e-${randomBytes(12).toString("hex")}`;
    const req = await ferry.credentials.request({ description: "OpenAI API key", vaultKey: "openai-api-key" });
    expect(req.userCode).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    expect(req.interval).toBe(1);
    expect(req.message).toContain(req.userCode!);
    expect(req.message).toContain(`key fingerprint ${req.keyFingerprint}`);
    const waiting = settle(ferry.credentials.waitForApproval(req.deviceCode, { timeout: 60_000 }));

    const seen = await operator(server, req.userCode!, ids.operatorEmail, "approve", secret);
    // The page encrypts to the agent's own key, and shows the fingerprint the agent printed.
    expect(seen.public_key).toBeDefined();
    expect(seen.encryption_key).toEqual(seen.public_key);
    expect(await keyFingerprint(seen.public_key!)).toBe(req.keyFingerprint);

    const result = await waiting;
    if (!result.ok) throw result.error;
    expect(result.value).toEqual({ vaultKey: "openai-api-key", description: "OpenAI API key", credentialValue: secret });
    // Delivered exactly once: the SDK forgot the key and the server answers invalid_grant.
    const again = await settle(ferry.credentials.waitForApproval(req.deviceCode, { timeout: 10_000 }));
    expect(again.ok ? undefined : (again.error as KeyferryError).code).toBe("INVALID_GRANT");

    const put = await ferry.vault.put(result.value.vaultKey, result.value.credentialValue);
    expect(put.vaultKey).toBe("openai-api-key");
    expect(Number.isNaN(Date.parse(put.updatedAt))).toBe(false);

    const stored = await api<{ vault_key: string; ciphertext: string }>(server, "GET", "/v1/vault/openai-api-key", undefined, {
      authorization: `Bearer ${ids.apiKey}`,
    });
    expect(stored.status).toBe(200);
    expect(stored.json.ciphertext.split(".")).toHaveLength(5);
    for (const form of [secret, base64url.encode(secret), Buffer.from(secret).toString("base64"), Buffer.from(secret).toString("hex")]) {
      expect(stored.text).not.toContain(form);
    }

    expect(await ferry.vault.get("openai-api-key")).toBe(secret);
    expect(await ferry.vault.list()).toEqual([{ vaultKey: "openai-api-key", updatedAt: put.updatedAt }]);
    await ferry.vault.delete("openai-api-key");
    expect(await ferry.vault.list()).toEqual([]);
    const gone = await settle(ferry.vault.get("openai-api-key"));
    expect(gone.ok ? undefined : (gone.error as KeyferryError).code).toBe("NOT_FOUND");
  });

  it("receives a credential in plain mode (no public key: the page encrypts to the server's per-request key)", async () => {
    const req = await ferry.credentials.request({ description: "Plain mode", vaultKey: "plain-key", endToEnd: false });
    expect(req.keyFingerprint).toBeNull();
    const waiting = settle(ferry.credentials.waitForApproval(req.deviceCode, { timeout: 60_000 }));
    const seen = await operator(server, req.userCode!, ids.operatorEmail, "approve", "plain-value");
    expect(seen.public_key).toBeUndefined();
    const result = await waiting;
    if (!result.ok) throw result.error;
    expect(result.value.credentialValue).toBe("plain-value");
  });

  it("reports a denial as ACCESS_DENIED", async () => {
    const req = await ferry.credentials.request({ description: "Will be denied", vaultKey: "denied" });
    const waiting = settle(ferry.credentials.waitForApproval(req.deviceCode, { timeout: 60_000 }));
    await operator(server, req.userCode!, ids.operatorEmail, "deny");
    const result = await waiting;
    expect(result.ok ? undefined : (result.error as KeyferryError).code).toBe("ACCESS_DENIED");
  });

  it("keeps each agent's vault apart and refuses a wrong API key", async () => {
    await ferry.vault.put("shared-name", "agent-one");
    const other = await createAccountAndAgent(server);
    const otherFerry = createClient({ baseUrl: server.url, apiKey: other.apiKey, masterSeed: randomBytes(32) });
    const read = await settle(otherFerry.vault.get("shared-name"));
    expect(read.ok ? undefined : (read.error as KeyferryError).code).toBe("NOT_FOUND");

    const forged = createClient({ baseUrl: server.url, apiKey: "kf_not_a_real_key", masterSeed: randomBytes(32) });
    const refused = await settle(forged.vault.list());
    expect(refused.ok ? undefined : (refused.error as KeyferryError).code).toBe("UNAUTHORIZED");
    const request = await settle(forged.credentials.request({ description: "x", vaultKey: "x" }));
    expect(request.ok ? undefined : (request.error as KeyferryError).code).toBe("UNAUTHORIZED");
  });
});
