import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { normalizeUserCode } from "../../core/user-code";
import { signHandle } from "../../worker/handles";
import { signToken } from "../../worker/tokens";
import { admin, call, newAgent, poll, requestCredential, type Answer } from "./support/api";
import { RUNS, contentType, expectCleanRefusal, headerSafe, headerValue, hostileBody, hostileJson, hostileString, requestRow } from "./support/hostile";
import { requestStub } from "../../worker/stubs";
import { storedRow } from "./support/request-row";
import type { AuditLogBody, DecideAnswerBody, LookupAnswerBody } from "../../core/wire";

/**
 * Property: the approval endpoints refuse whatever a hostile page, bot or guesser sends, and a
 * pending request is neither claimed, nor charged a failed attempt, nor decided.
 */

const auditTypes = async (accountId: string) =>
  ((await call<Answer<AuditLogBody>>("GET", `/v1/admin/accounts/${accountId}/audit`, { headers: admin })).body.events as Array<{ type: string }>).map((e) => e.type);

async function pendingRequest() {
  const agent = await newAgent();
  const issued = (await requestCredential(agent.apiKey)).body;
  return { ...agent, userCode: issued.user_code as string, deviceCode: issued.device_code as string };
}

async function expectUntouched(target: Awaited<ReturnType<typeof pendingRequest>>, auditBefore: string[]) {
  expect(await requestRow(target.userCode)).toMatchObject({ status: "pending", failed_attempts: 0, claim_hash: null, payload: null });
  expect(await auditTypes(target.accountId)).toEqual(auditBefore);
  expect((await poll(target.deviceCode)).body.error).toBe("authorization_pending");
}

const cookieHeader = fc.oneof(
  headerValue,
  fc.string({ unit: "binary-ascii", minLength: 0, maxLength: 60 }).map((s) => `kf_approval=${headerSafe(s)}`),
  fc.constant(`kf_approval=${"A".repeat(43)}`),
);

describe("property: hostile input on the approval endpoints changes nothing", () => {
  it("POST /v1/approvals/lookup refuses malformed bodies, unknown codes and forged links", async () => {
    const target = await pendingRequest();
    const before = await auditTypes(target.accountId);
    const realCode = normalizeUserCode(target.userCode);
    // A wrong email for the real code is a failed attempt by design (README, "Contract notes"): other codes only.
    const notTheRealCode = hostileJson.filter((code) => typeof code !== "string" || normalizeUserCode(code) !== realCode);
    // Signed by us, but the wrong kind (an approval token, a device code), or a link to another request.
    const forgedLink = fc.oneof(
      fc
        .tuple(fc.constantFrom("approval_link", "approval") as fc.Arbitrary<"approval_link" | "approval">, hostileString)
        .map(([kind, rid]) => signToken(env, kind, { uc: realCode, rid }, Date.now() + 600_000)),
      fc
        .uint8Array({ minLength: 32, maxLength: 32 })
        .map((secret) => signHandle(env, "device_code", { userCode: realCode!, expiresAt: Date.now() + 600_000, secret }).then((signed) => signed.handle)),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.record({ type: contentType, body: hostileBody }),
          fc.record({ user_code: notTheRealCode, email: hostileJson }, { requiredKeys: [] }).map((json) => ({ type: "application/json", body: JSON.stringify(json) })),
          fc.record({ link_token: hostileJson }).map((json) => ({ type: "application/json", body: JSON.stringify(json) })),
          forgedLink.map(async (token) => ({ type: "application/json", body: JSON.stringify({ link_token: await token }) })),
        ),
        cookieHeader,
        headerValue,
        async (input, cookie, ip) => {
          const { type, body } = await input;
          const answer = await call<Answer<LookupAnswerBody>>("POST", "/v1/approvals/lookup", {
            headers: { "Content-Type": type, Cookie: cookie || undefined, "CF-Connecting-IP": ip || undefined },
            body,
          });
          expectCleanRefusal(answer);
          expect(answer.headers.get("Set-Cookie")).toBeNull();
        },
      ),
      RUNS,
    );
    await expectUntouched(target, before);
  });

  it("POST /v1/approvals/decide refuses hostile tokens, decisions, values and cookies", async () => {
    const target = await pendingRequest();
    const before = await auditTypes(target.accountId);
    const realCode = normalizeUserCode(target.userCode)!;
    // A genuine approval token for the real request (as a look-up would sign it, with the request's
    // own encryption key): still refused without the session that claimed the request.
    const details = await runInDurableObject(requestStub(env, realCode), (_i, state) =>
      JSON.parse(storedRow(state).details),
    );
    const genuine = await signToken(env, "approval", { uc: realCode, ek: details.encryptionKey }, Date.now() + 600_000);
    const token = fc.oneof(hostileJson, fc.constant(genuine), fc.nat({ max: genuine.length - 1 }).map((at) => genuine.slice(0, at) + "A" + genuine.slice(at + 1)));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.record({ type: contentType, body: hostileBody }),
          fc
            .record(
              {
                approval_token: token,
                decision: fc.oneof(fc.constantFrom("approve", "deny"), hostileJson),
                credential_value: fc.oneof(hostileJson, fc.constant("")),
                credential_jwe: hostileJson,
              },
              { requiredKeys: ["approval_token"] },
            )
            .map((json) => ({ type: "application/json", body: JSON.stringify(json) })),
        ),
        cookieHeader,
        async (input, cookie) => {
          const answer = await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", { headers: { "Content-Type": input.type, Cookie: cookie || undefined }, body: input.body });
          expectCleanRefusal(answer);
        },
      ),
      RUNS,
    );
    await expectUntouched(target, before);
  });
});
