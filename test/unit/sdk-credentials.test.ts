// The SDK's device-flow client (RFC 8628 §3.1-3.5) against a fake API inside workerd: end-to-end
// key handling, the polling loop with `slow_down`, abort and timeout, with no real waiting.
import { CompactEncrypt, type JWK, importJWK } from "jose";
import { describe, expect, it } from "vitest";
import { keyFingerprint } from "../../core/fingerprint";
import { createClient, KeyferryError, type KeyferryErrorCode } from "../../sdk/src/index";
import { defaultSleep } from "../../sdk/src/sleep";
import { type Exchange, failure, fakeClock, fakeFetch, json, oauthError } from "./sdk-fakes";

const BASE_URL = "https://keyferry.test";
const DEVICE_CODE = "dc_test_secret";

interface Scenario {
  /** Answers to successive polls, given the public key the client sent (if any). */
  polls: Array<(publicKey: JWK | undefined) => Response | Promise<Response>>;
  interval?: number;
  onPoll?: (n: number) => void;
}

function agent(scenario: Scenario) {
  const clock = fakeClock();
  let publicKey: JWK | undefined;
  let polls = 0;
  const pollTimes: number[] = [];
  const api = fakeFetch(async ({ path, body }: Exchange) => {
    if (path === "/v1/credentials/request") {
      publicKey = (body as { public_key?: JWK }).public_key;
      return json(200, {
        device_code: DEVICE_CODE,
        user_code: "WDJB-MJHT",
        verification_uri: `${BASE_URL}/approve`,
        verification_uri_complete: `${BASE_URL}/approve?user_code=WDJB-MJHT`,
        expires_in: 600,
        interval: scenario.interval ?? 5,
        message: `Ask your operator to visit ${BASE_URL}/approve and enter code WDJB-MJHT`,
      });
    }
    if (path === "/v1/credentials/poll") {
      pollTimes.push(clock.now());
      scenario.onPoll?.(polls);
      const answer = scenario.polls[Math.min(polls++, scenario.polls.length - 1)]!;
      return answer(publicKey);
    }
    return oauthError("not_found", 404);
  });
  const ferry = createClient({ baseUrl: BASE_URL, apiKey: "kf_agent", fetch: api.fetch, now: clock.now, sleep: clock.sleep });
  return { ferry, clock, api, pollTimes, sentKey: () => publicKey };
}

const pending = () => oauthError("authorization_pending");
const slowDown = () => oauthError("slow_down");
const approvedJwe = (value: string) => async (publicKey: JWK | undefined) =>
  json(200, {
    vault_key: "openai-api-key",
    description: "OpenAI API key",
    credential_jwe: await new CompactEncrypt(new TextEncoder().encode(value))
      .setProtectedHeader({ alg: "ECDH-ES+A256KW", enc: "A256GCM" })
      .encrypt(await importJWK(publicKey!, "ECDH-ES+A256KW")),
  });

const REQUEST = { description: "OpenAI API key", vaultKey: "openai-api-key" };

describe("sdk credentials.request", () => {
  it("sends an ephemeral P-256 public key and reports its fingerprint in the message", async () => {
    const { ferry, api, sentKey } = agent({ polls: [pending] });
    const req = await ferry.credentials.request(REQUEST);
    const sent = api.exchanges[0]!;
    expect(sent.headers.get("authorization")).toBe("Bearer kf_agent");
    expect(sent.body).toMatchObject({ description: "OpenAI API key", vault_key: "openai-api-key" });
    expect(Object.keys(sentKey()!).sort()).toEqual(["crv", "kty", "x", "y"]); // no private "d"
    expect(sentKey()).toMatchObject({ kty: "EC", crv: "P-256" });
    expect(req.keyFingerprint).toBe(await keyFingerprint(sentKey()!));
    expect(req.keyFingerprint).toMatch(/^[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}$/);
    expect(req.message).toBe(
      `Ask your operator to visit ${BASE_URL}/approve and enter code WDJB-MJHT. The approval page must show key fingerprint ${req.keyFingerprint}.`,
    );
    expect(req).toMatchObject({ deviceCode: DEVICE_CODE, userCode: "WDJB-MJHT", interval: 5, expiresIn: 600, endToEnd: true });
  });

  it("sends no key when end-to-end is turned off", async () => {
    const { ferry, sentKey } = agent({ polls: [pending] });
    const req = await ferry.credentials.request({ ...REQUEST, endToEnd: false });
    expect(sentKey()).toBeUndefined();
    expect(req.keyFingerprint).toBeNull();
  });

  it("checks arguments before sending and every answer field after", async () => {
    const { ferry, api } = agent({ polls: [pending] });
    expect((await failure(ferry.credentials.request({ ...REQUEST, description: "" }))).code).toBe("INVALID_ARGUMENT");
    expect((await failure(ferry.credentials.request({ ...REQUEST, vaultKey: "bad key" }))).code).toBe("INVALID_ARGUMENT");
    expect(api.exchanges).toHaveLength(0);

    const answers: Response[] = [
      json(200, { user_code: "WDJB-MJHT", expires_in: 600 }),
      json(200, { device_code: "x", user_code: "A", verification_uri: "javascript:alert(1)", expires_in: 600 }),
      json(200, { device_code: "x", user_code: "A", verification_uri: `${BASE_URL}/approve`, expires_in: "600" }),
      json(401, { error: "invalid_client", error_description: "unknown key" }),
      json(429, { error: "too_many_requests", error_description: "5 active" }, { "retry-after": "30" }),
      json(400, { error: "invalid_request", error_description: "description" }),
    ];
    const strict = createClient({ baseUrl: BASE_URL, apiKey: "kf", fetch: async () => answers.shift()! });
    const codes: Array<KeyferryErrorCode | number | undefined> = [];
    for (let i = 0; i < 6; i++) {
      const error = await failure(strict.credentials.request(REQUEST));
      codes.push(error.code);
      if (error.code === "RATE_LIMITED") codes.push(error.retryAfter);
    }
    expect(codes).toEqual(["INVALID_RESPONSE", "INVALID_RESPONSE", "INVALID_RESPONSE", "UNAUTHORIZED", "RATE_LIMITED", 30, "INVALID_REQUEST"]);
  });
});

describe("sdk credentials.waitForApproval", () => {
  it("polls every interval, adds 5 s for good on slow_down, and decrypts the JWE", async () => {
    const { ferry, clock, pollTimes } = agent({ interval: 1, polls: [pending, slowDown, pending, pending, approvedJwe("sk-test-123")] });
    const req = await ferry.credentials.request(REQUEST);
    const t0 = clock.now();
    const result = await ferry.credentials.waitForApproval(req.deviceCode, { timeout: 600_000 });
    expect(result).toEqual({ vaultKey: "openai-api-key", description: "OpenAI API key", credentialValue: "sk-test-123" });
    // First poll one interval after the request; after slow_down the interval is 1 + 5 s, and stays so.
    expect(pollTimes.map((t) => t - t0)).toEqual([1000, 2000, 8000, 14000, 20000]);
    expect(clock.sleeps).toEqual([1000, 1000, 6000, 6000, 6000]);
  });

  it("erases the private key once the credential is delivered", async () => {
    const { ferry } = agent({ interval: 1, polls: [approvedJwe("v")] });
    const req = await ferry.credentials.request(REQUEST);
    await ferry.credentials.waitForApproval(req.deviceCode);
    // A replayed delivery can no longer be opened by this client.
    expect((await failure(ferry.credentials.waitForApproval(req.deviceCode))).code).toBe("MISSING_KEY");
  });

  it("refuses a plaintext credential when end-to-end was asked for", async () => {
    const { ferry } = agent({ interval: 1, polls: [() => json(200, { vault_key: "openai-api-key", description: "d", credential_value: "leaked" })] });
    const req = await ferry.credentials.request(REQUEST);
    const error = await failure(ferry.credentials.waitForApproval(req.deviceCode));
    expect(error.code).toBe("INVALID_RESPONSE");
    expect(error.message).not.toContain("leaked");
  });

  it("accepts a plaintext credential in plain mode", async () => {
    const { ferry } = agent({ interval: 1, polls: [() => json(200, { vault_key: "openai-api-key", description: "d", credential_value: "plain" })] });
    const req = await ferry.credentials.request({ ...REQUEST, endToEnd: false });
    expect((await ferry.credentials.waitForApproval(req.deviceCode)).credentialValue).toBe("plain");
  });

  it("fails with DECRYPTION_FAILED for a JWE made to another key", async () => {
    const other = agent({ polls: [pending] });
    await other.ferry.credentials.request(REQUEST);
    const { ferry } = agent({ interval: 1, polls: [() => approvedJwe("v")(other.sentKey())] });
    const req = await ferry.credentials.request(REQUEST);
    expect((await failure(ferry.credentials.waitForApproval(req.deviceCode))).code).toBe("DECRYPTION_FAILED");
  });

  it.each([
    ["access_denied", "ACCESS_DENIED"],
    ["expired_token", "EXPIRED_TOKEN"],
    ["invalid_grant", "INVALID_GRANT"],
  ] as const)("turns %s into %s", async (wire, code) => {
    const { ferry } = agent({ interval: 1, polls: [pending, () => oauthError(wire)] });
    const req = await ferry.credentials.request(REQUEST);
    const error = await failure(ferry.credentials.waitForApproval(req.deviceCode));
    expect(error.code).toBe(code);
    expect(error.message).not.toContain(DEVICE_CODE);
  });

  it("gives up with TIMEOUT at the deadline", async () => {
    const { ferry, clock, pollTimes } = agent({ interval: 5, polls: [pending] });
    const req = await ferry.credentials.request(REQUEST);
    const t0 = clock.now();
    const error = await failure(ferry.credentials.waitForApproval(req.deviceCode, { timeout: 12_000 }));
    expect(error.code).toBe("TIMEOUT");
    expect(pollTimes.map((t) => t - t0)).toEqual([5000, 10000]);
    expect(clock.now() - t0).toBe(12_000);
  });

  it("a resumed wait keeps the interval since the last poll instead of polling at once (no slow_down)", async () => {
    const { ferry, clock, pollTimes } = agent({ interval: 5, polls: [pending, pending, approvedJwe("sk-resumed")] });
    const req = await ferry.credentials.request(REQUEST);
    const t0 = clock.now();
    expect((await failure(ferry.credentials.waitForApproval(req.deviceCode, { timeout: 7_000 }))).code).toBe("TIMEOUT");
    expect((await failure(ferry.credentials.waitForApproval(req.deviceCode, { timeout: 2_000 }))).code).toBe("TIMEOUT");
    const result = await ferry.credentials.waitForApproval(req.deviceCode, { timeout: 60_000 });
    expect(result.credentialValue).toBe("sk-resumed");
    // Polls at 5 s and 10 s (the second wait, 7-9 s, had no poll due), then 15 s: never two within 5 s.
    expect(pollTimes.map((t) => t - t0)).toEqual([5000, 10000, 15000]);
  });

  it("stops with ABORTED when the signal fires between polls", async () => {
    const controller = new AbortController();
    const { ferry, pollTimes } = agent({ interval: 1, polls: [pending], onPoll: (n) => n === 2 && controller.abort() });
    const req = await ferry.credentials.request(REQUEST);
    const error = await failure(ferry.credentials.waitForApproval(req.deviceCode, { signal: controller.signal }));
    expect(error.code).toBe("ABORTED");
    expect(pollTimes).toHaveLength(3);
  });

  it("stops with ABORTED at once when the real sleep is aborted", async () => {
    const controller = new AbortController();
    const sleeping = defaultSleep(60_000, controller.signal);
    controller.abort();
    expect((await failure(sleeping)).code).toBe("ABORTED");
    const { ferry } = agent({ polls: [pending] });
    const req = await ferry.credentials.request(REQUEST);
    expect((await failure(ferry.credentials.waitForApproval(req.deviceCode, { signal: AbortSignal.abort() }))).code).toBe("ABORTED");
  });

  it("rides out up to 3 transient failures in a row, then reports NETWORK", async () => {
    const offline = () => Promise.reject(new TypeError("fetch failed"));
    const flaky = agent({ interval: 1, polls: [offline, () => json(503, { error: "server_error" }), offline, approvedJwe("ok")] });
    const req = await flaky.ferry.credentials.request(REQUEST);
    expect((await flaky.ferry.credentials.waitForApproval(req.deviceCode)).credentialValue).toBe("ok");

    const down = agent({ interval: 1, polls: [offline] });
    const req2 = await down.ferry.credentials.request(REQUEST);
    expect((await failure(down.ferry.credentials.waitForApproval(req2.deviceCode))).code).toBe("NETWORK");
    expect(down.pollTimes).toHaveLength(4);
  });
});
