/**
 * What a passkey costs a decision (durable-objects/account/README.md, "Operators and passkeys"): rows written on
 * the request and the account object, beside the email binding's (test/integration/cost-bound.test.ts).
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { accountStub, requestStub } from "../../worker/stubs";
import { auditUntil, normalized } from "./support/api";
import { challengeFor, decideWith, passkeyAccount, pendingRequest } from "./support/passkey-decisions";

type Stub = ReturnType<typeof requestStub> | ReturnType<typeof accountStub>;
const rowsWritten = (stub: Stub) =>
  runInDurableObject(stub, (_instance, state) => state.storage.sql.exec<{ n: number }>("SELECT total_changes() AS n").one().n);

describe("rows written by a passkey decision", () => {
  it("challenge: 1 row on the request; decide: 2 on the request, 2 on the account (audit, counter)", async () => {
    const account = await passkeyAccount();
    const pending = await pendingRequest(account.apiKey, account.email);
    const request = requestStub(env, normalized(pending.looked.body.request.user_code!));
    const accountObject = accountStub(env, account.accountId);
    // The look-up writes nothing on the account: it is audited with the decision that follows it.

    const beforeChallenge = await rowsWritten(request);
    const challenge = await challengeFor(pending, "approve", "sk_cost");
    expect((await rowsWritten(request)) - beforeChallenge).toBe(1);

    const webauthn = await account.authenticator.assert(challenge.body.public_key);
    const [requestBefore, accountBefore] = [await rowsWritten(request), await rowsWritten(accountObject)];
    expect((await decideWith(pending, "approve", "sk_cost", webauthn)).status).toBe(200);
    await auditUntil(account.accountId, (e) => e.some((x) => x.type === "approved"));
    for (let i = 0; i < 100 && (await rowsWritten(accountObject)) - accountBefore < 2; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    // The challenge consumed and the state (with the payload) stored.
    expect((await rowsWritten(request)) - requestBefore).toBe(2);
    // The `approved` event and the passkey's counter and last use (the console's list leaves the
    // request out by that event: nothing is cleared).
    expect((await rowsWritten(accountObject)) - accountBefore).toBe(2);
  });
});
