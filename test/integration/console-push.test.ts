/**
 * The console's push calls (README, "Push to your phone"): the VAPID key for subscribing, and an
 * operator's own browser subscriptions, refused in the error shape when the endpoint or keys are
 * wrong, bounded per operator, and gone with the operator.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { base64url } from "jose";
import { describe, expect, it } from "vitest";
import type { PushKeyBody, PushSubscriptionCreatedBody } from "../../core/wire";
import { MAX_PUSH_SUBSCRIPTIONS_PER_OPERATOR } from "../../durable-objects/account/push-subscriptions";
import { admin, call, type Answer } from "./support/api";
import { consoleHeaders, enrol, newAccountWithOwner } from "./support/operators";

async function signedInOwner() {
  const made = await newAccountWithOwner();
  const { cookie } = await enrol(made.invitation);
  return { ...made, cookie: cookie! };
}

/** A browser's subscription as `PushSubscription.toJSON()` gives it. */
async function browserSubscription(endpoint = `https://push.example.net/send/${crypto.randomUUID()}`) {
  const { publicKey } = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]) as CryptoKeyPair;
  const p256dh = base64url.encode(new Uint8Array(await crypto.subtle.exportKey("raw", publicKey) as ArrayBuffer));
  return { endpoint, expirationTime: null, keys: { p256dh, auth: base64url.encode(crypto.getRandomValues(new Uint8Array(16))) } };
}

const subscribe = (cookie: string, json: unknown, headers: Record<string, string> = {}) =>
  call<Answer<PushSubscriptionCreatedBody>>("POST", "/v1/console/push-subscriptions", { headers: { ...consoleHeaders(cookie), ...headers }, json });

const storedEndpoints = (accountId: string) =>
  runInDurableObject(env.ACCOUNTS.get(env.ACCOUNTS.idFromName(accountId)), (_i, state) =>
    state.storage.sql.exec<{ endpoint: string }>("SELECT endpoint FROM push_subscriptions ORDER BY created_at").toArray().map((row) => row.endpoint),
  );

describe("console push", { timeout: 30_000 }, () => {
  it("gives the VAPID key (an uncompressed P-256 point) to a signed-in operator only", async () => {
    expect((await call("GET", "/v1/console/push")).status).toBe(401);
    const { cookie } = await signedInOwner();
    const answer = await call<Answer<PushKeyBody>>("GET", "/v1/console/push", { headers: consoleHeaders(cookie) });
    expect(answer.status).toBe(200);
    const point = base64url.decode(answer.body.application_server_key);
    expect(point).toHaveLength(65);
    expect(point[0]).toBe(4);
  });

  it("stores a subscription, replaces it when the same browser subscribes again, and lets only its operator remove it", async () => {
    const owner = await signedInOwner();
    const browser = await browserSubscription();
    const first = await subscribe(owner.cookie, browser);
    expect(first.status).toBe(201);
    expect(first.body.subscription_id).toMatch(/^psb_/);
    const again = await subscribe(owner.cookie, await browserSubscription(browser.endpoint));
    expect(again.status).toBe(201);
    expect(await storedEndpoints(owner.accountId)).toEqual([browser.endpoint]);

    const invited = await call<Answer<{ invitation_url: string }>>("POST", `/v1/admin/accounts/${owner.accountId}/operators`, {
      headers: admin,
      json: { email: `approver-${crypto.randomUUID()}@example.com`, role: "approver" },
    });
    const approver = await enrol(invited.body.invitation_url.split("#invite=")[1]!);
    const byOther = await call<Answer>("DELETE", `/v1/console/push-subscriptions/${again.body.subscription_id}`, { headers: consoleHeaders(approver.cookie), json: {} });
    expect(byOther.status).toBe(404);
    const byOwner = await call("DELETE", `/v1/console/push-subscriptions/${again.body.subscription_id}`, { headers: consoleHeaders(owner.cookie), json: {} });
    expect(byOwner.status).toBe(204);
    expect(await storedEndpoints(owner.accountId)).toEqual([]);
  });

  it("refuses internal or plain-http endpoints, malformed keys, a foreign Origin and a non-JSON body, storing nothing", async () => {
    const owner = await signedInOwner();
    const good = await browserSubscription();
    for (const endpoint of ["http://push.example.net/x", "https://127.0.0.1/x", "https://localhost./x", "https://push.example.net:6379/x", "not a url"]) {
      const refused = await subscribe(owner.cookie, { ...good, endpoint });
      expect(refused.status, endpoint).toBe(400);
      expect(refused.body.error).toBe("invalid_request");
    }
    for (const keys of [{ p256dh: "short", auth: good.keys.auth }, { p256dh: good.keys.p256dh, auth: "" }, { p256dh: good.keys.p256dh }]) {
      expect((await subscribe(owner.cookie, { ...good, keys })).body.error).toBe("invalid_request");
    }
    expect((await subscribe(owner.cookie, good, { Origin: "https://evil.example" })).status).toBe(403);
    const text = await call("POST", "/v1/console/push-subscriptions", { headers: { ...consoleHeaders(owner.cookie), "Content-Type": "text/plain" }, body: JSON.stringify(good) });
    expect(text.status).toBe(415);
    expect(await storedEndpoints(owner.accountId)).toEqual([]);
  });

  it(`keeps at most ${MAX_PUSH_SUBSCRIPTIONS_PER_OPERATOR} per operator, and none of a removed operator`, async () => {
    const owner = await signedInOwner();
    for (let i = 0; i < MAX_PUSH_SUBSCRIPTIONS_PER_OPERATOR; i++) expect((await subscribe(owner.cookie, await browserSubscription())).status).toBe(201);
    const over = await subscribe(owner.cookie, await browserSubscription());
    expect(over.status).toBe(409);
    expect(over.body.error).toBe("too_many_subscriptions");
    expect(await storedEndpoints(owner.accountId)).toHaveLength(MAX_PUSH_SUBSCRIPTIONS_PER_OPERATOR);
    expect((await call("DELETE", `/v1/admin/accounts/${owner.accountId}/operators/${owner.operatorId}`, { headers: admin })).status).toBe(204);
    expect(await storedEndpoints(owner.accountId)).toEqual([]);
  });
});
