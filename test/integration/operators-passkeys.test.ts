import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { signFields } from "../../worker/console/signed-fields";
import { accountStub } from "../../worker/stubs";
import { admin, call, type Answer } from "./support/api";
import { consoleHeaders, enrol, invitationOf, newAccountWithOwner, signIn } from "./support/operators";
import { SoftAuthenticator } from "./support/soft-authenticator";
import type { ConsoleSessionBody, EnrolledBody, EnrolOptionsBody, OperatorInvitedBody, OperatorListBody, PasskeyChallengeAnswerBody } from "../../core/wire";

describe("operators and passkeys", () => {
  it("enrols the owner from the invitation, lists the passkey, signs in without a name", async () => {
    const { accountId, operatorId, invitation, email } = await newAccountWithOwner();
    const { enrolled, cookie, authenticator, options } = await enrol(invitation);
    expect(options.body.public_key.authenticatorSelection).toMatchObject({ residentKey: "required", userVerification: "required" });
    expect(options.body.public_key.rp.id).toBe("keyferry.test");
    expect(enrolled.status).toBe(201);
    expect(enrolled.body.operator).toEqual({ operator_id: operatorId, email, name: email.split("@")[0], role: "owner" });
    expect(enrolled.headers.get("Set-Cookie")).toMatch(/^__Host-kf_console=kfc1\.[^;]+; Path=\/; Secure; HttpOnly; SameSite=Strict; Max-Age=43200$/);
    const session = await call<Answer<ConsoleSessionBody>>("GET", "/v1/console/session", { headers: { Cookie: cookie! } });
    expect(session.body).toMatchObject({ account_id: accountId, operator: { operator_id: operatorId } });

    const listed = await call<OperatorListBody>("GET", `/v1/admin/accounts/${accountId}/operators`, { headers: admin });
    expect(listed.body.operators).toEqual([
      { operator_id: operatorId, email, name: expect.any(String), role: "owner", passkeys: [{ passkey_id: enrolled.body.passkey_id, aaguid: "00000000-0000-0000-0000-000000000000", created_at: expect.any(String), last_used_at: null }] },
    ]);

    const { answer } = await signIn(authenticator);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ account_id: accountId, operator: { operator_id: operatorId } });
  });

  it("an invitation works once", async () => {
    const { invitation } = await newAccountWithOwner();
    expect((await enrol(invitation)).enrolled.status).toBe(201);
    const again = await call<Answer<EnrolOptionsBody>>("POST", "/v1/console/enrol/options", { headers: consoleHeaders(), json: { invitation } });
    expect(again.status).toBe(403);
    expect(again.body.error).toBe("invalid_token");
  });

  it("an invitation whose challenge was replaced by a second options call refuses the first registration", async () => {
    const { invitation } = await newAccountWithOwner();
    const authenticator = new SoftAuthenticator();
    const first = await call<Answer<EnrolOptionsBody>>("POST", "/v1/console/enrol/options", { headers: consoleHeaders(), json: { invitation } });
    await call("POST", "/v1/console/enrol/options", { headers: consoleHeaders(), json: { invitation } });
    const webauthn = await authenticator.register(first.body.public_key);
    const answer = await call<Answer<EnrolledBody>>("POST", "/v1/console/enrol", { headers: consoleHeaders(), json: { invitation, webauthn } });
    expect(answer.status).toBe(403);
    expect(answer.body.error).toBe("access_denied");
  });

  it("removing an operator ends its passkeys and sessions at once", async () => {
    const { accountId, operatorId, invitation } = await newAccountWithOwner();
    const { cookie, authenticator } = await enrol(invitation);
    const removed = await call("DELETE", `/v1/admin/accounts/${accountId}/operators/${operatorId}`, { headers: admin });
    expect(removed.status).toBe(204);
    const session = await call<Answer<ConsoleSessionBody>>("GET", "/v1/console/session", { headers: { Cookie: cookie! } });
    expect(session.status).toBe(401);
    expect(session.body.error).toBe("invalid_token");
    const { answer } = await signIn(authenticator);
    expect(answer.status).toBe(403);
    const again = await call("DELETE", `/v1/admin/accounts/${accountId}/operators/${operatorId}`, { headers: admin });
    expect(again.status).toBe(404);
  });

  it("admin adds operators, one per email, and validates the body", async () => {
    const { accountId } = await newAccountWithOwner();
    const added = await call<Answer<OperatorInvitedBody>>("POST", `/v1/admin/accounts/${accountId}/operators`, { headers: admin, json: { email: "second@example.com", name: "Sam", role: "approver" } });
    expect(added.status).toBe(201);
    expect(added.body).toEqual({ operator_id: expect.stringMatching(/^opr_/), email: "second@example.com", name: "Sam", role: "approver", invitation_url: expect.stringMatching(/#invite=kfi1\./) });
    // The same email again is a re-invitation (recovery of a lost passkey): same operator, a new link, the old one withdrawn.
    const twice = await call<Answer<OperatorInvitedBody>>("POST", `/v1/admin/accounts/${accountId}/operators`, { headers: admin, json: { email: "SECOND@example.com" } });
    expect(twice.status).toBe(201);
    expect(twice.body).toMatchObject({ operator_id: added.body.operator_id, email: "second@example.com", name: "Sam", role: "approver" });
    expect(twice.body.invitation_url).not.toBe(added.body.invitation_url);
    const withdrawn = await call("POST", "/v1/console/enrol/options", { headers: consoleHeaders(), json: { invitation: invitationOf(added.body.invitation_url) } });
    expect(withdrawn.status).toBe(403);
    expect((await enrol(invitationOf(twice.body.invitation_url))).enrolled.status).toBe(201);
    expect((await call<OperatorListBody>("GET", `/v1/admin/accounts/${accountId}/operators`, { headers: admin })).body.operators).toHaveLength(2);
    for (const [json, field] of [[{}, "email"], [{ email: 42 }, "email"], [{ email: "x@example.com", role: "god" }, "role"], [{ email: "x@example.com", name: 7 }, "name"]] as const) {
      const bad = await call<Answer<OperatorInvitedBody>>("POST", `/v1/admin/accounts/${accountId}/operators`, { headers: admin, json });
      expect(bad.status).toBe(400);
      expect(bad.body.error_description).toContain(field);
    }
    const notJson = await call<Answer<OperatorInvitedBody>>("POST", `/v1/admin/accounts/${accountId}/operators`, { headers: { ...admin, "Content-Type": "application/json" }, body: "{nope" });
    expect(notJson.status).toBe(400);
    expect(notJson.body.error).toBe("invalid_request");
    const unknown = await call("GET", `/v1/admin/accounts/acc_aaaaaaaaaaaaaaaaaaaa/operators`, { headers: admin });
    expect(unknown.status).toBe(404);
    const noAdmin = await call("GET", `/v1/admin/accounts/${accountId}/operators`);
    expect(noAdmin.status).toBe(401);
  });

  it("an expired invitation is refused", async () => {
    const { accountId, invitation } = await newAccountWithOwner();
    // Altering the expiry it carries breaks its tag.
    const parts = invitation.split(".");
    parts[3] = String(Date.now() - 1);
    const altered = await call<Answer<EnrolOptionsBody>>("POST", "/v1/console/enrol/options", { headers: consoleHeaders(), json: { invitation: parts.join(".") } });
    expect([altered.status, altered.body.error]).toEqual([403, "invalid_token"]);
    // The account's own record of it past its 24 h (the token's copy of the expiry is the edge's check).
    await runInDurableObject(accountStub(env, accountId), (_instance, state) => void state.storage.sql.exec("UPDATE invitations SET expires_at = ?", Date.now() - 1));
    const expired = await call<Answer<EnrolOptionsBody>>("POST", "/v1/console/enrol/options", { headers: consoleHeaders(), json: { invitation } });
    expect([expired.status, expired.body.error]).toEqual([403, "invalid_token"]);
  });
});

describe("console sign-in and session refusals", () => {
  it("a replayed sign-in assertion is refused (even by an authenticator that keeps no counter)", async () => {
    const { invitation } = await newAccountWithOwner();
    const { authenticator } = await enrol(invitation);
    const first = await signIn(authenticator, { counter: 0 });
    expect(first.answer.status).toBe(200);
    const replay = await call<Answer<ConsoleSessionBody>>("POST", "/v1/console/sign-in", { headers: consoleHeaders(), json: { webauthn: first.webauthn } });
    expect(replay.status).toBe(403);
    expect(replay.body.error).toBe("access_denied");
  });

  it("a sign-in without user verification is refused", async () => {
    const { invitation } = await newAccountWithOwner();
    const { authenticator } = await enrol(invitation);
    const { answer } = await signIn(authenticator, { userVerified: false });
    expect(answer.status).toBe(403);
  });

  it("a counter that went backwards is refused (a cloned authenticator)", async () => {
    const { invitation } = await newAccountWithOwner();
    const { authenticator } = await enrol(invitation);
    expect((await signIn(authenticator, { counter: 10 })).answer.status).toBe(200);
    const { answer } = await signIn(authenticator, { counter: 5 });
    expect(answer.status).toBe(403);
  });

  it("a forged, altered or expired console cookie is 401 and touches no object", async () => {
    const { accountId, operatorId, invitation } = await newAccountWithOwner();
    const { cookie } = await enrol(invitation);
    const [prefix, , , , sessionId, tag] = cookie!.split("=")[1]!.split(".");
    // Properly signed, for the live session, but past its expiry: only the edge's expiry check refuses it.
    const expired = await signFields(env, "console_session", [accountId, operatorId, String(Date.now() - 1), sessionId!]);
    const forged = [
      "__Host-kf_console=kfc1.acc_aaaaaaaaaaaaaaaaaaaa.opr_aaaaaaaaaaaaaaaaaaaa.99999999999999.AAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      `__Host-kf_console=${[prefix, accountId, operatorId, String(Date.now() + 1e9), sessionId, tag].join(".")}`,
      `__Host-kf_console=${expired}`,
      "__Host-kf_console=garbage",
    ];
    // Every call into the account object's session check is counted.
    const proto = await runInDurableObject(accountStub(env, accountId), (instance) => Object.getPrototypeOf(instance) as Record<string, unknown>);
    const original = proto.consoleSession as (...args: unknown[]) => unknown;
    let reached = 0;
    proto.consoleSession = function (this: unknown, ...args: unknown[]) {
      reached++;
      return original.apply(this, args);
    };
    try {
      for (const c of forged) {
        const answer = await call<Answer<ConsoleSessionBody>>("GET", "/v1/console/session", { headers: { Cookie: c } });
        expect([c, answer.status, answer.body.error]).toEqual([c, 401, "invalid_token"]);
      }
      expect(reached).toBe(0);
      expect((await call("GET", "/v1/console/session", { headers: { Cookie: cookie! } })).status).toBe(200);
      expect(reached).toBe(1);
    } finally {
      proto.consoleSession = original;
    }
  });

  it("sign-out ends the session in the account object", async () => {
    const { invitation } = await newAccountWithOwner();
    const { cookie } = await enrol(invitation);
    const out = await call("DELETE", "/v1/console/session", { headers: consoleHeaders(cookie) });
    expect(out.status).toBe(204);
    expect((await call("GET", "/v1/console/session", { headers: { Cookie: cookie! } })).status).toBe(401);
  });

  it("state changes need JSON and the service's own Origin", async () => {
    const cross = await call("POST", "/v1/console/sign-in/options", { headers: { Origin: "https://evil.example" }, json: {} });
    expect(cross.status).toBe(403);
    const none = await call("POST", "/v1/console/sign-in/options", { json: {} });
    expect(none.status).toBe(403);
    const form = await call("POST", "/v1/console/sign-in/options", { headers: consoleHeaders(), form: { a: "b" } });
    expect(form.status).toBe(415);
  });
});

describe("enrolment and sign-in bad input", () => {
  it("malformed JSON, wrong types, oversized attestation, unknown credential ids: the error shape, never 500", async () => {
    const { invitation } = await newAccountWithOwner();
    const authenticator = new SoftAuthenticator();
    const options = await call<Answer<EnrolOptionsBody>>("POST", "/v1/console/enrol/options", { headers: consoleHeaders(), json: { invitation } });
    const good = await authenticator.register(options.body.public_key);
    const cases: Array<[string, unknown, number]> = [
      ["/v1/console/enrol/options", { invitation: 42 }, 400],
      ["/v1/console/enrol/options", { invitation: "kfi1.x" }, 403],
      ["/v1/console/enrol", { invitation, webauthn: "nope" }, 400],
      ["/v1/console/enrol", { invitation, webauthn: { ...good, type: "password" } }, 400],
      ["/v1/console/enrol", { invitation, webauthn: { ...good, response: { ...good.response, attestationObject: "A".repeat(9000) } } }, 400],
      ["/v1/console/enrol", { invitation, webauthn: { ...good, response: { ...good.response, attestationObject: "AAAA" } } }, 403],
      ["/v1/console/enrol", { invitation, webauthn: { ...good, response: { ...good.response, clientDataJSON: "e30" } } }, 403],
      ["/v1/console/sign-in", { webauthn: { ...good } }, 400],
      ["/v1/console/sign-in", { webauthn: 7 }, 400],
    ];
    for (const [path, json, status] of cases) {
      const answer = await call("POST", path, { headers: consoleHeaders(), json });
      expect([path, answer.status]).toEqual([path, status]);
      expect(Object.keys(answer.body as object).sort()).toEqual(["error", "error_description"]);
    }
    const huge = await call("POST", "/v1/console/enrol", { headers: consoleHeaders(), json: { invitation, webauthn: { ...good, response: { ...good.response, attestationObject: "A".repeat(40_000) } } } });
    expect(huge.status).toBe(413);
    const malformed = await call("POST", "/v1/console/enrol", { headers: { ...consoleHeaders(), "Content-Type": "application/json" }, body: "{" });
    expect(malformed.status).toBe(400);
    // A well-formed assertion by a credential the service never enrolled.
    const stranger = new SoftAuthenticator();
    const signInOptions = await call<Answer<PasskeyChallengeAnswerBody>>("POST", "/v1/console/sign-in/options", { headers: consoleHeaders(), json: {} });
    await stranger.register({ rp: { id: "keyferry.test" }, user: { id: "AAAA" }, challenge: "AAAA" });
    const unknown = await call("POST", "/v1/console/sign-in", { headers: consoleHeaders(), json: { webauthn: await stranger.assert(signInOptions.body.public_key) } });
    expect(unknown.status).toBe(403);
    // The invitation still works after all of that.
    expect((await enrol(invitation)).enrolled.status).toBe(201);
  });
});
