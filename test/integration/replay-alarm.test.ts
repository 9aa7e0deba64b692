import { describe, expect, it } from "vitest";
import { approve, auditUntil, call, newAgent, poll, requestCredential, type PollAnswer } from "./support/api";

/** README, "Contract notes", replay alarm: a delivered code polled again is invalid_grant and alerts the operator once. */
const replayPoll = (deviceCode: string, ip: string, userAgent: string) =>
  call<PollAnswer>("POST", "/v1/credentials/poll", { json: { device_code: deviceCode }, headers: { "CF-Connecting-IP": ip, "User-Agent": userAgent } });

describe("replay alarm", { timeout: 30_000 }, () => {
  it("answers invalid_grant to every replay and records replay_detected once, with the caller's ip and user agent", async () => {
    const { apiKey, operatorEmail, accountId } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    await approve(issued.user_code, operatorEmail, "sk_replayed");
    expect((await poll(issued.device_code)).status).toBe(200);

    const first = await replayPoll(issued.device_code, "203.0.113.7", "curl/8.0");
    expect(first.status).toBe(400);
    expect(first.body.error).toBe("invalid_grant");
    const second = await replayPoll(issued.device_code, "203.0.113.8", "other/1.0");
    expect(second.body.error).toBe("invalid_grant");

    const events = await auditUntil(accountId, (e) => e.some((x) => x.type === "replay_detected"));
    // A later event of the same account, so the log has caught up with both replays.
    await requestCredential(apiKey);
    const settled = await auditUntil(accountId, (e) => e.filter((x) => x.type === "requested").length === 2);
    const replays = settled.filter((x) => x.type === "replay_detected");
    expect(replays).toHaveLength(1);
    expect(replays[0]).toMatchObject({ request_id: events.find((x) => x.type === "delivered")!.request_id, detail: { ip: "203.0.113.7", user_agent: "curl/8.0" } });
  });

  it("says nothing for a code that was never delivered", async () => {
    const { apiKey, accountId } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    expect((await poll(issued.device_code)).body.error).toBe("authorization_pending");
    await requestCredential(apiKey);
    const events = await auditUntil(accountId, (e) => e.filter((x) => x.type === "requested").length === 2);
    expect(events.some((x) => x.type === "replay_detected")).toBe(false);
  });
});
