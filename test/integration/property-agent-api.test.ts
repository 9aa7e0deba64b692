import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { signHandle } from "../../worker/handles";
import { signToken } from "../../worker/tokens";
import { admin, bearer, call, newAgent, poll, requestCredential, type Answer, type PollAnswer } from "./support/api";
import { RUNS, badVaultKey, contentType, expectCleanRefusal, headerSafe, headerValue, hostileBody, hostileJson, hostileString, requestRow } from "./support/hostile";
import type { AuditLogBody, DeviceAuthorizationBody } from "../../core/wire";

/**
 * Property: whatever malformed body, header or code an agent or OAuth client sends, the answer is
 * the contract's refusal and nothing changes: no slot is taken, no audit event appears, and a
 * pending request stays pending (its next real poll is not even counted as early).
 */

const auditTypes = async (accountId: string) =>
  ((await call<Answer<AuditLogBody>>("GET", `/v1/admin/accounts/${accountId}/audit`, { headers: admin })).body.events as Array<{ type: string }>).map((e) => e.type);

/** The account still has all 5 active slots free: nothing was issued. */
async function expectAllSlotsFree(apiKey: string) {
  for (let i = 0; i < 5; i++) expect((await requestCredential(apiKey, { vault_key: `after-${i}` })).status).toBe(200);
  expect((await requestCredential(apiKey)).status).toBe(429);
}

/** A body for /v1/credentials/request that the contract must refuse: at least one field is wrong. */
const invalidRequestJson = fc.oneof(
  fc.record(
    { description: fc.oneof(hostileJson, fc.constant("A credential")), vault_key: badVaultKey, public_key: hostileJson, hint: hostileJson },
    { requiredKeys: ["vault_key"] },
  ),
  fc.record({
    description: fc.oneof(fc.constantFrom("", "x".repeat(201), null, 7, ["a"], { a: 1 }), hostileString.filter((s) => s.length === 0 || s.length > 200)),
    vault_key: fc.constant("stripe-sk"),
  }),
  fc.record({
    description: fc.constant("A credential"),
    vault_key: fc.constant("stripe-sk"),
    public_key: fc.oneof(
      hostileJson.filter((v) => v !== undefined),
      fc.record({ kty: fc.constantFrom("EC", "RSA", "oct", "x"), crv: fc.constantFrom("P-256", "P-384", "secp256k1"), x: hostileString, y: hostileString, d: fc.option(hostileString) }),
    ),
  }),
  fc.record({ description: fc.constant("A credential"), vault_key: fc.constant("stripe-sk"), hint: hostileJson.filter((h) => h !== "code" && h !== "push") }),
);

describe("property: hostile input on the agent API changes nothing", () => {
  it("POST /v1/credentials/request refuses malformed bodies, media types and keys", async () => {
    const { apiKey, accountId } = await newAgent();
    const before = await auditTypes(accountId);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          // A good key with a bad body.
          fc.record({ auth: fc.constant(`Bearer ${apiKey}`), type: fc.constant("application/json"), body: invalidRequestJson.map((b) => JSON.stringify(b)) }),
          fc.record({ auth: fc.constant(`Bearer ${apiKey}`), type: contentType, body: hostileBody }),
          // A bad key with a good body.
          fc.record({ auth: headerValue, type: fc.constant("application/json"), body: fc.constant(JSON.stringify({ description: "d", vault_key: "k" })) }),
          fc.record({ auth: hostileString.map((s) => headerSafe(`Bearer kf1.${accountId}.${s}`)), type: fc.constant("application/json"), body: fc.constant('{"description":"d","vault_key":"k"}') }),
        ),
        async ({ auth, type, body }) => {
          const answer = await call<Answer<DeviceAuthorizationBody>>("POST", "/v1/credentials/request", { headers: { Authorization: auth, "Content-Type": type }, body });
          expectCleanRefusal(answer);
        },
      ),
      RUNS,
    );
    expect(await auditTypes(accountId)).toEqual(before);
    await expectAllSlotsFree(apiKey);
  });

  it("POST /v1/credentials/poll refuses forged, mutated and malformed device codes without touching the request", async () => {
    const { apiKey } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    const real: string = issued.device_code;
    const userCode = (issued.user_code as string).replace("-", "");
    const expiresAt = Date.now() + 600_000;
    const mutated = fc
      .tuple(fc.nat({ max: real.length - 1 }), fc.constantFrom("A", "B", "-", "_", ".", ""), fc.constantFrom("replace", "insert", "truncate"))
      .map(([at, ch, how]) => (how === "replace" ? real.slice(0, at) + ch + real.slice(at + 1) : how === "insert" ? real.slice(0, at) + ch + real.slice(at) : real.slice(0, at)))
      .filter((code) => code !== real);
    // Properly signed, but the wrong kind of handle or token, or the right kind with another secret.
    const otherHandle = fc
      .tuple(fc.constantFrom("device_code", "auth_req_id") as fc.Arbitrary<"device_code" | "auth_req_id">, fc.uint8Array({ minLength: 32, maxLength: 32 }))
      .map(([kind, secret]) => signHandle(env, kind, { userCode, expiresAt, secret }).then((signed) => signed.handle));
    const browserToken = (fc.constantFrom("approval", "approval_link") as fc.Arbitrary<"approval" | "approval_link">).map((kind) =>
      signToken(env, kind, { uc: userCode, rid: "req_x" }, expiresAt),
    );
    const resigned = fc.oneof(otherHandle, browserToken);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          hostileBody.map((body) => ({ type: "application/json", body })),
          hostileJson.map((code) => ({ type: "application/json", body: JSON.stringify({ device_code: code }) ?? "" })),
          mutated.map((code) => ({ type: "application/json", body: JSON.stringify({ device_code: code }) })),
          resigned.map(async (token) => ({ type: "application/json", body: JSON.stringify({ device_code: await token }) })),
          fc.record({ type: contentType.filter((t) => !/^application\/json/i.test(t)), body: fc.constant(JSON.stringify({ device_code: real })) }),
        ),
        async (input) => {
          const { type, body } = await input;
          const answer = await call<PollAnswer>("POST", "/v1/credentials/poll", { headers: { "Content-Type": type }, body });
          expectCleanRefusal(answer);
          expect(answer.body.error).not.toMatch(/^(authorization_pending|slow_down)$/);
        },
      ),
      RUNS,
    );
    const row = await requestRow(issued.user_code);
    expect(row).toMatchObject({ status: "pending", failed_attempts: 0, claim_hash: null, payload: null });
    // Not one of those polls reached the request's throttle: the first real poll is not early.
    expect((await poll(real)).body.error).toBe("authorization_pending");
  });

  it("the OAuth endpoints refuse hostile forms and client credentials", async () => {
    const { apiKey, agentId, accountId } = await newAgent();
    const before = await auditTypes(accountId);
    const basic = `Basic ${btoa(`${agentId}:${apiKey}`)}`;
    const formValue = fc.oneof(hostileString, fc.constantFrom("urn:ietf:params:oauth:grant-type:device_code", "urn:openid:params:grant-type:ciba", "authorization_code"));
    const hostileForm = fc.dictionary(
      fc.oneof(fc.constantFrom("grant_type", "device_code", "auth_req_id", "client_id", "client_secret", "description", "vault_key", "public_key", "login_hint", "binding_message", "requested_expiry", "scope"), hostileString),
      formValue,
      { maxKeys: 6 },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("/oauth/token", "/oauth/device_authorization", "/oauth/bc-authorize"),
        fc.oneof(
          // Good client, hostile parameters; a vault_key that cannot be valid, so nothing is issued.
          fc.record({ auth: fc.constant(basic), form: hostileForm, vaultKey: badVaultKey.filter((v): v is string => typeof v === "string") }),
          // Hostile client authentication.
          fc.record({ auth: headerValue, form: hostileForm, vaultKey: fc.constant("k") }),
        ),
        fc.oneof(fc.constant("application/x-www-form-urlencoded"), contentType),
        async (path, { auth, form, vaultKey }, type) => {
          const fields = { ...form, description: form.description ?? "d", vault_key: vaultKey };
          if (path === "/oauth/token") delete (fields as Record<string, string>).vault_key;
          const body = new URLSearchParams(Object.entries(fields).map(([k, v]) => [k, String(v)])).toString();
          const answer = await call("POST", path, { headers: { Authorization: auth || undefined, "Content-Type": type }, body });
          expectCleanRefusal(answer);
        },
      ),
      RUNS,
    );
    expect(await auditTypes(accountId)).toEqual(before);
    await expectAllSlotsFree(apiKey);
  });
});
