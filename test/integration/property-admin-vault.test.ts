import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { VAULT_KEY_PATTERN } from "../../core/limits";
import { admin, bearer, call, newAgent, type Answer } from "./support/api";
import { RUNS, badVaultKey, contentType, expectCleanRefusal, headerValue, hostileBody, hostileJson, hostileString, pathSegment } from "./support/hostile";
import type { AccountUpdatedBody, AuditLogBody, VaultItemBody, VaultListBody, VaultStoredBody } from "../../core/wire";

/**
 * Property: the admin API and the vault refuse hostile tokens, paths and bodies in the contract's
 * shape, and neither the account (settings, agents, audit log) nor the vault changes.
 */

const auditOf = async (accountId: string) => (await call<Answer<AuditLogBody>>("GET", `/v1/admin/accounts/${accountId}/audit`, { headers: admin })).body.events;
const accountOf = async (accountId: string) => (await call<Answer<AccountUpdatedBody>>("GET", `/v1/admin/accounts/${accountId}`, { headers: admin })).body;

/** A string no email parser accepts: it has no "@". */
const notAnEmail = fc.oneof(hostileString.filter((s) => !s.includes("@")), fc.constantFrom(null, 1, [], {}, "@", "a@", "@b", "a@@b"));

/**
 * A JSON object could be a valid agent or a no-op settings update (`{}`); raw hostile bodies leave
 * objects to the typed generators above, which always break a field.
 */
function isJsonObject(body: string | Uint8Array): boolean {
  try {
    const value = JSON.parse(typeof body === "string" ? body : new TextDecoder().decode(body));
    return typeof value === "object" && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

describe("property: hostile input on the admin API and the vault changes nothing", () => {
  it("the admin API refuses hostile tokens, ids and bodies", async () => {
    const { accountId, agentId } = await newAgent();
    const [auditBefore, accountBefore] = [await auditOf(accountId), await accountOf(accountId)];
    const invalidAccount = fc.oneof(
      fc.record({ name: hostileJson, operator_email: notAnEmail }),
      fc.record({ name: fc.oneof(fc.constantFrom("", "   ", null, 5, "n".repeat(101))), operator_email: fc.constant("ops@example.com") }),
    );
    const invalidPatch = fc.oneof(
      fc.record({ operator_email: notAnEmail, webhook_url: fc.option(hostileJson) }),
      fc.record({ webhook_url: fc.oneof(hostileString.filter((s) => !s.startsWith("https://")), fc.constantFrom("http://example.com/hook", "javascript:alert(1)", "https://", 7, [], {})) }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          // A wrong token on every admin route.
          fc.record({
            method: fc.constantFrom("POST", "GET", "PATCH", "DELETE"),
            path: fc.constantFrom("/v1/admin/accounts", `/v1/admin/accounts/${accountId}`, `/v1/admin/accounts/${accountId}/agents`, `/v1/admin/accounts/${accountId}/agents/${agentId}`, `/v1/admin/accounts/${accountId}/audit`),
            auth: headerValue.map((v) => v || "Bearer nope"),
            type: fc.constant("application/json"),
            body: fc.constant('{"name":"n","operator_email":"a@b.co","webhook_url":"https://x.example"}'),
          }),
          // Hostile ids in the path, with the right token.
          fc.record({
            method: fc.constantFrom("GET", "PATCH", "POST", "DELETE"),
            path: fc.oneof(
              pathSegment.map((id) => `/v1/admin/accounts/${id}`),
              pathSegment.map((id) => `/v1/admin/accounts/${id}/audit`),
              pathSegment.map((id) => `/v1/admin/accounts/${id}/agents`),
              pathSegment.map((id) => `/v1/admin/accounts/${accountId}/agents/${id}`),
            ),
            auth: fc.constant(admin.Authorization),
            type: fc.constant("application/json"),
            body: fc.constant('{"name":"n"}'),
          }).filter(({ method, path }) => !(method === "GET" && path.endsWith(accountId)) && !(method === "POST" && path === `/v1/admin/accounts/${accountId}/agents`)),
          // Hostile bodies, with the right token.
          fc.record({ method: fc.constant("POST"), path: fc.constant("/v1/admin/accounts"), auth: fc.constant(admin.Authorization), type: fc.constant("application/json"), body: invalidAccount.map((b) => JSON.stringify(b)) }),
          fc.record({ method: fc.constant("PATCH"), path: fc.constant(`/v1/admin/accounts/${accountId}`), auth: fc.constant(admin.Authorization), type: fc.constant("application/json"), body: invalidPatch.map((b) => JSON.stringify(b)) }),
          fc.record({ method: fc.constantFrom("POST", "PATCH"), path: fc.constantFrom(`/v1/admin/accounts/${accountId}/agents`, `/v1/admin/accounts/${accountId}`), auth: fc.constant(admin.Authorization), type: contentType, body: hostileBody.filter((b) => !isJsonObject(b)) }),
        ),
        async ({ method, path, auth, type, body }) => {
          const answer = await call(method, path, { headers: { Authorization: auth, "Content-Type": type }, body: method === "GET" || method === "DELETE" ? undefined : body });
          expectCleanRefusal(answer);
        },
      ),
      RUNS,
    );
    expect(await auditOf(accountId)).toEqual(auditBefore);
    expect(await accountOf(accountId)).toEqual(accountBefore);
  });

  it("the vault refuses hostile keys, bodies and tokens, and keeps what it holds", async () => {
    const { apiKey, accountId } = await newAgent();
    const auth = bearer(apiKey).Authorization;
    expect((await call<Answer<VaultStoredBody>>("PUT", "/v1/vault/kept", { headers: { Authorization: auth }, json: { ciphertext: "eyJ.kept" } })).status).toBe(200);
    const listBefore = (await call<Answer<VaultListBody>>("GET", "/v1/vault", { headers: { Authorization: auth } })).body;
    const badKeyPath = badVaultKey
      .filter((k): k is string => typeof k === "string" && k.length > 0)
      .map((k) => {
        try {
          return encodeURIComponent(k);
        } catch {
          return "%ZZ";
        }
      })
      .filter((segment) => {
        try {
          return !VAULT_KEY_PATTERN.test(decodeURIComponent(segment));
        } catch {
          return true;
        }
      });
    const invalidPut = fc.oneof(
      fc.record({ ciphertext: fc.oneof(fc.constantFrom("", null, 1, [], {}), hostileJson.filter((v) => typeof v !== "string")) }),
      hostileJson.filter((v) => typeof v !== "object" || v === null || Array.isArray(v) || typeof (v as Record<string, unknown>).ciphertext !== "string"),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.record({ method: fc.constantFrom("GET", "PUT", "DELETE"), path: badKeyPath.map((k) => `/v1/vault/${k}`), auth: fc.constant(auth), type: fc.constant("application/json"), body: fc.constant('{"ciphertext":"x"}') }),
          fc.record({ method: fc.constant("PUT"), path: fc.constant("/v1/vault/kept"), auth: fc.constant(auth), type: fc.constant("application/json"), body: invalidPut.map((b) => JSON.stringify(b) ?? "null") }),
          fc.record({ method: fc.constant("PUT"), path: fc.constant("/v1/vault/kept"), auth: fc.constant(auth), type: contentType.filter((t) => !/^application\/json/i.test(t.trim())), body: hostileBody }),
          fc.record({
            method: fc.constantFrom("GET", "PUT", "DELETE"),
            path: fc.constantFrom("/v1/vault", "/v1/vault/kept"),
            auth: headerValue.map((v) => v || "Bearer nope").filter((v) => v !== auth),
            type: fc.constant("application/json"),
            body: fc.constant('{"ciphertext":"x"}'),
          }).filter(({ method, path }) => !(method !== "GET" && path === "/v1/vault")),
        ),
        async ({ method, path, auth: authorization, type, body }) => {
          const answer = await call(method, path, { headers: { Authorization: authorization, "Content-Type": type }, body: method === "PUT" ? body : undefined });
          expectCleanRefusal(answer);
        },
      ),
      RUNS,
    );
    expect((await call<Answer<VaultListBody>>("GET", "/v1/vault", { headers: { Authorization: auth } })).body).toEqual(listBefore);
    expect((await call<Answer<VaultItemBody>>("GET", "/v1/vault/kept", { headers: { Authorization: auth } })).body.ciphertext).toBe("eyJ.kept");
    // The account behind the key saw nothing either.
    expect((await auditOf(accountId)).map((e: { type: string }) => e.type)).not.toContain("request_refused");
  });
});
