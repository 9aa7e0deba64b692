// The Web Push message the service sends, opened by an independent implementation: http_ece (the
// Node library behind web-push) decrypts the RFC 8291 body with the browser's private key, and jose
// verifies the RFC 8292 VAPID token against the advertised application server key.
import { createECDH, randomBytes } from "node:crypto";
import ece from "http_ece";
import { base64url, decodeProtectedHeader, importJWK, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { vapidFrom } from "../../durable-objects/account/notify/vapid.ts";
import { pushRequest, type PushPayload } from "../../durable-objects/account/notify/web-push.ts";
import { vapidKeyPair } from "../../scripts/vapid-key.mjs";

const payload: PushPayload = {
  type: "credential.requested",
  request_id: "req_123",
  agent: { name: "deploy-bot" },
  description: "Stripe secret key",
  vault_key: "stripe-sk",
  expires_at: "2026-12-04T21:00:00.000Z",
  url: "https://keyferry.example/console#request=req_123",
};

function browserSubscription(endpoint: string) {
  const ecdh = createECDH("prime256v1");
  ecdh.generateKeys();
  const auth = randomBytes(16);
  return { ecdh, auth, record: { endpoint, p256dh: ecdh.getPublicKey().toString("base64url"), auth: auth.toString("base64url") } };
}

describe("Web Push message", () => {
  it("decrypts with http_ece to the exact payload, with a VAPID JWT jose verifies", async () => {
    const vapid = await vapidFrom({ VAPID_PRIVATE_KEY: vapidKeyPair().privateJwk, VAPID_SUBJECT: "mailto:ops@keyferry.example" });
    expect(vapid).not.toBeNull();
    const browser = browserSubscription("https://push.example.net:8443/send/abc");
    const now = Date.now();
    const { url, init } = await pushRequest(browser.record, payload, vapid!, now, now + 90_000, "evt_0123456789abcdef0123456789abcdef");

    expect(url).toBe("https://push.example.net:8443/send/abc");
    expect(init.headers).toMatchObject({ TTL: "90", Urgency: "high", "Content-Encoding": "aes128gcm", Topic: "0123456789abcdef0123456789abcdef" });
    const plaintext = ece.decrypt(Buffer.from(init.body), { version: "aes128gcm", privateKey: browser.ecdh, authSecret: browser.auth.toString("base64url") });
    expect(JSON.parse(plaintext.toString("utf8"))).toEqual(payload);

    const match = /^vapid t=([^,]+), k=([A-Za-z0-9_-]+)$/.exec(init.headers.Authorization ?? "");
    expect(match).not.toBeNull();
    const [, jwt, k] = match!;
    expect(k).toBe(vapid?.applicationServerKey);
    const point = base64url.decode(k ?? "");
    expect(point[0]).toBe(4);
    const publicKey = await importJWK({ kty: "EC", crv: "P-256", x: base64url.encode(point.slice(1, 33)), y: base64url.encode(point.slice(33)) }, "ES256");
    const { payload: claims } = await jwtVerify(jwt!, publicKey, { algorithms: ["ES256"], audience: "https://push.example.net:8443", subject: "mailto:ops@keyferry.example", typ: "JWT" });
    expect(decodeProtectedHeader(jwt!).alg).toBe("ES256");
    expect(claims.exp! - Math.floor(now / 1000)).toBeGreaterThan(0);
    expect(claims.exp! - Math.floor(now / 1000)).toBeLessThanOrEqual(24 * 60 * 60);
  });

  it("never outlives the request: TTL is the time left, 0 once it is over", async () => {
    const vapid = (await vapidFrom({ VAPID_PRIVATE_KEY: vapidKeyPair().privateJwk, VAPID_SUBJECT: "https://keyferry.example" }))!;
    const { record } = browserSubscription("https://push.example.net/x");
    const now = Date.now();
    expect((await pushRequest(record, payload, vapid, now, now + 600_000, "evt_1")).init.headers.TTL).toBe("600");
    expect((await pushRequest(record, payload, vapid, now, now - 1, "evt_2")).init.headers.TTL).toBe("0");
  });

  it("is off without a usable key or subject", async () => {
    const key = vapidKeyPair().privateJwk;
    expect(await vapidFrom({ VAPID_PRIVATE_KEY: "", VAPID_SUBJECT: "mailto:a@b.c" })).toBeNull();
    expect(await vapidFrom({ VAPID_PRIVATE_KEY: "{not json", VAPID_SUBJECT: "mailto:a@b.c" })).toBeNull();
    expect(await vapidFrom({ VAPID_PRIVATE_KEY: JSON.stringify({ kty: "EC", crv: "P-384", x: "a", y: "b", d: "c" }), VAPID_SUBJECT: "mailto:a@b.c" })).toBeNull();
    expect(await vapidFrom({ VAPID_PRIVATE_KEY: key, VAPID_SUBJECT: "ops@keyferry.example" })).toBeNull();
  });
});
