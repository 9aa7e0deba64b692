/**
 * Saved credentials (README, "Saved credentials"): the console's store of passkey-sealed items, one
 * object per operator, and the one-touch approval whose challenge commits to the stored item.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { base64url, CompactEncrypt } from "jose";
import { describe, expect, it } from "vitest";
import { MAX_CREDENTIAL_JWE_BYTES, MAX_SAVED_CREDENTIALS_PER_OPERATOR } from "../../core/limits";
import type { AgentCreatedBody, ConsoleRequestsBody, DecideAnswerBody, PasskeyChallengeAnswerBody, SavedCredentialBody, SavedCredentialListBody } from "../../core/wire";
import { savedStub } from "../../worker/stubs";
import { admin, call, encryptForRequest, poll, requestCredential, type Answer } from "./support/api";
import { consoleHeaders, enrol, invitationOf, newAccountWithOwner } from "./support/operators";

/** An owner signed in with a passkey, and an agent of the account. */
async function signedInOwner() {
  const made = await newAccountWithOwner();
  const { cookie, authenticator, enrolled } = await enrol(made.invitation);
  const agent = await call<AgentCreatedBody>("POST", `/v1/admin/accounts/${made.accountId}/agents`, { headers: admin, json: { name: "deploy-bot" } });
  return { ...made, cookie: cookie!, authenticator, passkeyId: (enrolled.body as { passkey_id: string }).passkey_id, apiKey: agent.body.api_key };
}

/** Another operator of the same account, invited and signed in with their own passkey. */
async function secondOperator(accountId: string) {
  const invited = await call<Answer<{ invitation_url: string; operator_id: string }>>("POST", `/v1/admin/accounts/${accountId}/operators`, {
    headers: admin,
    json: { email: `approver-${crypto.randomUUID()}@example.com`, role: "approver" },
  });
  const { cookie, enrolled, authenticator } = await enrol(invitationOf(invited.body.invitation_url));
  return { cookie: cookie!, operatorId: invited.body.operator_id, passkeyId: (enrolled.body as { passkey_id: string }).passkey_id, authenticator };
}

/** What the console's browser stores: a `dir`/`A256GCM` JWE under a key the server never sees. */
async function sealed(value: string): Promise<string> {
  const key = crypto.getRandomValues(new Uint8Array(32));
  return new CompactEncrypt(new TextEncoder().encode(value)).setProtectedHeader({ alg: "dir", enc: "A256GCM" }).encrypt(key);
}

const prfSalt = () => base64url.encode(crypto.getRandomValues(new Uint8Array(32)));

const put = (cookie: string, name: string, json: unknown, headers: Record<string, string | undefined> = {}) =>
  call<Answer>("PUT", `/v1/console/saved/${name}`, { headers: { ...consoleHeaders(cookie), ...headers }, json });
const list = (cookie: string) => call<Answer<SavedCredentialListBody>>("GET", "/v1/console/saved", { headers: consoleHeaders(cookie) });
const get = (cookie: string, name: string) => call<Answer<SavedCredentialBody>>("GET", `/v1/console/saved/${name}`, { headers: consoleHeaders(cookie) });

/** The tables of an operator's saved-credentials object: none until something is stored. */
const tablesOf = (accountId: string, operatorId: string) =>
  runInDurableObject(savedStub(env, accountId, operatorId), (_i, state) =>
    state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\'").toArray().map((r) => r.name),
  );

describe("saved credentials", { timeout: 30_000 }, () => {
  it("stores, lists (without the JWE), returns and deletes an operator's item", async () => {
    const owner = await signedInOwner();
    const item = { jwe: await sealed("sk_live_1"), passkey_id: owner.passkeyId, prf_salt: prfSalt() };
    expect((await put(owner.cookie, "stripe-sk", item)).status).toBe(204);
    const listed = await list(owner.cookie);
    expect(listed.status).toBe(200);
    expect(listed.body.items).toEqual([{ name: "stripe-sk", passkey_id: owner.passkeyId, prf_salt: item.prf_salt, updated_at: expect.any(String) }]);
    const got = await get(owner.cookie, "stripe-sk");
    expect(got.body).toEqual({ ...listed.body.items[0], jwe: item.jwe });
    const replaced = { ...item, jwe: await sealed("sk_live_2") };
    expect((await put(owner.cookie, "stripe-sk", replaced)).status).toBe(204);
    expect((await get(owner.cookie, "stripe-sk")).body.jwe).toBe(replaced.jwe);
    expect((await call("DELETE", "/v1/console/saved/stripe-sk", { headers: consoleHeaders(owner.cookie), json: {} })).status).toBe(204);
    expect((await get(owner.cookie, "stripe-sk")).status).toBe(404);
    expect((await call<Answer>("DELETE", "/v1/console/saved/stripe-sk", { headers: consoleHeaders(owner.cookie), json: {} })).body.error).toBe("not_found");
  });

  it("is the saving operator's alone: another operator of the account gets 404, an empty list, and cannot use the owner's passkey", async () => {
    const owner = await signedInOwner();
    expect((await put(owner.cookie, "gh.token", { jwe: await sealed("ghp_1"), passkey_id: owner.passkeyId, prf_salt: prfSalt() })).status).toBe(204);
    const other = await secondOperator(owner.accountId);
    const read = await get(other.cookie, "gh.token");
    expect([read.status, read.body.error, typeof read.body.error_description]).toEqual([404, "not_found", "string"]);
    expect((await list(other.cookie)).body.items).toEqual([]);
    expect((await call("DELETE", "/v1/console/saved/gh.token", { headers: consoleHeaders(other.cookie), json: {} })).status).toBe(404);
    // Sealing under someone else's passkey is refused: only the item's passkey signs its approval.
    const borrowed = await put(other.cookie, "gh.token", { jwe: await sealed("ghp_2"), passkey_id: owner.passkeyId, prf_salt: prfSalt() });
    expect([borrowed.status, borrowed.body.error]).toEqual([400, "invalid_request"]);
    expect(borrowed.body.error_description).toContain("passkey_id");
    expect((await get(owner.cookie, "gh.token")).status).toBe(200);
    expect(await tablesOf(owner.accountId, other.operatorId)).toEqual([]);
  });

  it("refuses bad input with a 4xx in the error shape and stores nothing", async () => {
    const owner = await signedInOwner();
    const good = { jwe: await sealed("v"), passkey_id: owner.passkeyId, prf_salt: prfSalt() };
    const [header, , iv, ciphertext, tag] = good.jwe.split(".");
    const otherHeader = base64url.encode(JSON.stringify({ alg: "dir", enc: "A128GCM" }));
    const cases: Array<[string, unknown]> = [
      ["-leading-dash", good],
      ["x".repeat(129), good],
      ["sp%20ace", good],
      ["%E0%A4%A", good],
      ["ok", { ...good, jwe: "not a jwe" }],
      ["ok", { ...good, jwe: [header, "a2V5", iv, ciphertext, tag].join(".") }],
      ["ok", { ...good, jwe: [otherHeader, "", iv, ciphertext, tag].join(".") }],
      ["ok", { ...good, jwe: `${header}..${iv}.${"A".repeat(MAX_CREDENTIAL_JWE_BYTES)}.${tag}` }],
      ["ok", { ...good, prf_salt: base64url.encode(new Uint8Array(31)) }],
      ["ok", { ...good, prf_salt: undefined }],
      ["ok", { ...good, passkey_id: base64url.encode(crypto.getRandomValues(new Uint8Array(16))) }],
      ["ok", { ...good, passkey_id: "not base64url!" }],
      ["ok", [good]],
    ];
    for (const [name, body] of cases) {
      const refused = await put(owner.cookie, name, body);
      expect([refused.status, refused.body.error, typeof refused.body.error_description], `${name} ${JSON.stringify(body).slice(0, 120)}`).toEqual([400, "invalid_request", "string"]);
    }
    expect((await call<Answer>("PUT", "/v1/console/saved/ok", { headers: { ...consoleHeaders(owner.cookie), "Content-Type": "text/plain" }, body: JSON.stringify(good) })).status).toBe(415);
    expect((await put(owner.cookie, "ok", good, { Origin: "https://evil.example" })).status).toBe(403);
    expect((await call<Answer>("DELETE", "/v1/console/saved/ok", { headers: { Cookie: owner.cookie, Origin: "https://evil.example" }, json: {} })).status).toBe(403);
    expect((await list(owner.cookie)).body.items).toEqual([]);
    expect(await tablesOf(owner.accountId, owner.operatorId)).toEqual([]);
  });

  it(`holds at most ${MAX_SAVED_CREDENTIALS_PER_OPERATOR} items per operator (409 saved_full), and a replacement still fits`, async () => {
    const owner = await signedInOwner();
    const stub = savedStub(env, owner.accountId, owner.operatorId);
    for (let i = 0; i < MAX_SAVED_CREDENTIALS_PER_OPERATOR; i++) await stub.put({ name: `item-${i}`, jwe: "x", passkeyId: owner.passkeyId, prfSalt: prfSalt() });
    const full = await put(owner.cookie, "one-more", { jwe: await sealed("v"), passkey_id: owner.passkeyId, prf_salt: prfSalt() });
    expect([full.status, full.body.error]).toEqual([409, "saved_full"]);
    expect((await put(owner.cookie, "item-0", { jwe: await sealed("v"), passkey_id: owner.passkeyId, prf_salt: prfSalt() })).status).toBe(204);
  });

  it("answers a missing or forged session 401 before any object is reached", async () => {
    const owner = await signedInOwner();
    // A cookie that names this very account and operator, with a tag of its own making.
    const forged = `__Host-kf_console=kfc1.${owner.accountId}.${owner.operatorId}.${Date.now() + 3_600_000}.${"s".repeat(43)}.${"t".repeat(43)}`;
    for (const cookie of [undefined, forged]) {
      const item = { jwe: await sealed("v"), passkey_id: owner.passkeyId, prf_salt: prfSalt() };
      const answers = [
        await call<Answer>("PUT", "/v1/console/saved/stripe-sk", { headers: { Origin: "https://keyferry.test", Cookie: cookie }, json: item }),
        await call<Answer>("GET", "/v1/console/saved", { headers: { Cookie: cookie } }),
        await call<Answer>("GET", "/v1/console/saved/stripe-sk", { headers: { Cookie: cookie } }),
        await call<Answer>("DELETE", "/v1/console/saved/stripe-sk", { headers: { Origin: "https://keyferry.test", Cookie: cookie }, json: {} }),
      ];
      expect(answers.map((a) => [a.status, a.body.error])).toEqual(Array(4).fill([401, "invalid_token"]));
    }
    expect(await tablesOf(owner.accountId, owner.operatorId)).toEqual([]);
  });

  it("erases a removed operator's items", async () => {
    const owner = await signedInOwner();
    const other = await secondOperator(owner.accountId);
    expect((await put(other.cookie, "db-url", { jwe: await sealed("postgres://x"), passkey_id: other.passkeyId, prf_salt: prfSalt() })).status).toBe(204);
    expect(await tablesOf(owner.accountId, other.operatorId)).toEqual(["saved_credentials"]);
    expect((await call("DELETE", `/v1/admin/accounts/${owner.accountId}/operators/${other.operatorId}`, { headers: admin })).status).toBe(204);
    expect(await tablesOf(owner.accountId, other.operatorId)).toEqual([]);
    expect((await get(other.cookie, "db-url")).status).toBe(401);
  });
});

describe("one-touch approval with a saved credential", { timeout: 30_000 }, () => {
  /** An owner with a saved item named like the pending request's vault key. */
  async function savedAndPending(vaultKey = "stripe-sk") {
    const owner = await signedInOwner();
    const item = { jwe: await sealed("sealed value"), passkey_id: owner.passkeyId, prf_salt: prfSalt() };
    expect((await put(owner.cookie, vaultKey, item)).status).toBe(204);
    const issued = await requestCredential(owner.apiKey, { vault_key: "stripe-sk" });
    const listed = await call<Answer<ConsoleRequestsBody>>("GET", "/v1/console/requests", { headers: consoleHeaders(owner.cookie) });
    const request = listed.body.requests[0]!;
    const base = `/v1/console/requests/${request.request_id}`;
    const challenge = (json: unknown, cookie = owner.cookie) => call<Answer<PasskeyChallengeAnswerBody>>("POST", `${base}/challenge`, { headers: consoleHeaders(cookie), json });
    const decide = (json: unknown, cookie = owner.cookie) => call<Answer<DecideAnswerBody>>("POST", `${base}/decide`, { headers: consoleHeaders(cookie), json });
    return { owner, item, issued: issued.body, request, challenge, decide };
  }

  it("commits the challenge to the saved item and its passkey; the browser's JWE reaches the agent", async () => {
    const { owner, request, issued, challenge, decide } = await savedAndPending();
    const second = await enrolAgain(owner);
    const asked = await challenge({ decision: "approve", saved: "stripe-sk" });
    expect(asked.status).toBe(200);
    expect(asked.body.public_key.allowCredentials!.map((c) => c.id)).toEqual([owner.passkeyId]);
    expect(second).not.toBe(owner.passkeyId);
    const webauthn = await owner.authenticator.assert(asked.body.public_key);
    const credential_jwe = await encryptForRequest(request.encryption_key!, "opened in the browser");
    const decided = await decide({ decision: "approve", credential_jwe, webauthn, saved: "stripe-sk" });
    expect(decided.status, JSON.stringify(decided.body)).toBe(200);
    expect(decided.body.status).toBe("approved");
    expect((await poll(issued.device_code)).body.credential_value).toBe("opened in the browser");
  });

  it("refuses the decision when the item changed after the challenge, leaving the request pending", async () => {
    const { owner, item, request, issued, challenge, decide } = await savedAndPending();
    const asked = await challenge({ decision: "approve", saved: "stripe-sk" });
    const webauthn = await owner.authenticator.assert(asked.body.public_key);
    expect((await put(owner.cookie, "stripe-sk", { ...item, jwe: await sealed("swapped") })).status).toBe(204);
    const credential_jwe = await encryptForRequest(request.encryption_key!, "opened in the browser");
    const refused = await decide({ decision: "approve", credential_jwe, webauthn, saved: "stripe-sk" });
    expect([refused.status, refused.body.error]).toEqual([403, "access_denied"]);
    expect((await poll(issued.device_code)).body.error).toBe("authorization_pending");
  });

  it("refuses an assertion by another passkey, an item deleted since, and a typed challenge passed off as a saved one", async () => {
    const { owner, request, issued, challenge, decide } = await savedAndPending();
    const credential_jwe = await encryptForRequest(request.encryption_key!, "opened in the browser");
    // The same operator's second passkey signs a saved approval's challenge: not the item's passkey.
    await enrolAgain(owner);
    const asked = await challenge({ decision: "approve", saved: "stripe-sk" });
    const byOther = await owner.authenticator.assert({ ...asked.body.public_key, allowCredentials: [] }, {}, owner.authenticator.credentials[1]);
    expect((await decide({ decision: "approve", credential_jwe, webauthn: byOther, saved: "stripe-sk" })).status).toBe(403);
    // A typed-path challenge (the digest of this very JWE), sent as a saved approval.
    const typed = await challenge({ decision: "approve", payload_sha256: base64url.encode(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(credential_jwe)))) });
    const typedAssertion = await owner.authenticator.assert(typed.body.public_key, {}, owner.authenticator.credentials[0]);
    expect((await decide({ decision: "approve", credential_jwe, webauthn: typedAssertion, saved: "stripe-sk" })).body.error).toBe("access_denied");
    // Deleted between challenge and decision.
    const again = await challenge({ decision: "approve", saved: "stripe-sk" });
    const signed = await owner.authenticator.assert(again.body.public_key);
    expect((await call("DELETE", "/v1/console/saved/stripe-sk", { headers: consoleHeaders(owner.cookie), json: {} })).status).toBe(204);
    expect((await decide({ decision: "approve", credential_jwe, webauthn: signed, saved: "stripe-sk" })).status).toBe(404);
    expect((await poll(issued.device_code)).body.error).toBe("authorization_pending");
  });

  it("refuses malformed saved approvals with 400 or 404 in the error shape", async () => {
    const { owner, request, challenge, decide } = await savedAndPending();
    const other = await secondOperator(owner.accountId);
    const digest = base64url.encode(new Uint8Array(32));
    const refusals: Array<[number, Promise<{ status: number; body: Answer }>]> = [
      [400, challenge({ decision: "deny", saved: "stripe-sk" })],
      [400, challenge({ decision: "approve", saved: "stripe-sk", payload_sha256: digest })],
      [400, challenge({ decision: "approve", saved: "not a name" })],
      [400, challenge({ decision: "approve", saved: "other-key" })],
      // The approver has no item of that name: the owner's is not theirs.
      [404, challenge({ decision: "approve", saved: "stripe-sk" }, other.cookie)],
      [400, decide({ decision: "approve", credential_value: "plain", saved: "stripe-sk" })],
      [400, decide({ decision: "deny", saved: "stripe-sk" })],
    ];
    for (const [status, answer] of refusals) {
      const { status: got, body } = await answer;
      expect([got, typeof body.error, typeof body.error_description], JSON.stringify(body)).toEqual([status, "string", "string"]);
    }
    expect(request.vault_key).toBe("stripe-sk");
  });
});

/** The owner enrols a second passkey (a re-invitation of the same email); returns its ID. */
async function enrolAgain(owner: Awaited<ReturnType<typeof signedInOwner>>): Promise<string> {
  const invited = await call<Answer<{ invitation_url: string }>>("POST", `/v1/admin/accounts/${owner.accountId}/operators`, { headers: admin, json: { email: owner.email } });
  const { enrolled } = await enrol(invitationOf(invited.body.invitation_url), owner.authenticator);
  return (enrolled.body as { passkey_id: string }).passkey_id;
}
