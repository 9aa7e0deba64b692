import { env, exports } from "cloudflare:workers";
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../worker/index";
import { admin, approve, auditUntil, call, lookupAs, newAgent, normalized, poll, requestCredential, type Answer } from "./support/api";
import type { AuditLogBody } from "../../core/wire";
import { readRow } from "../../durable-objects/request/request-schema";

/** Audit noise never evicts a decision, and revoking an agent leaves no gap a request could slip through. */

describe("refusals never evict the audit trail", () => {
  it("keeps an approval's events through 1,010 refused requests, counted in one request_refused event", { timeout: 300_000 }, async () => {
    const { apiKey, accountId, operatorEmail } = await newAgent();
    const approved = await requestCredential(apiKey);
    await approve(approved.body.user_code, operatorEmail, "sk_live");
    await auditUntil(accountId, (events) => events.some((e) => e.type === "approved"));
    for (let i = 0; i < 4; i++) expect((await requestCredential(apiKey)).status).toBe(200);
    for (let i = 0; i < 1010; i++) expect((await requestCredential(apiKey)).status).toBe(429);

    const events = (await call<Answer<AuditLogBody>>("GET", `/v1/admin/accounts/${accountId}/audit`, { headers: admin })).body.events;
    const decision = (type: string) => events.filter((e) => e.type === type && e.request_id === events.find((x) => x.type === "approved")?.request_id);
    expect(decision("approved")).toHaveLength(1);
    expect(decision("looked_up")).toHaveLength(1);
    expect(decision("requested")).toHaveLength(1);
    expect(events.filter((e) => e.type === "agent_created")).toHaveLength(1);
    const refused = events.filter((e) => e.type === "request_refused");
    expect(refused).toHaveLength(1);
    expect(refused[0]!.detail).toMatchObject({ reason: "too_many_requests", count: 1010 });
    expect(events.length).toBeLessThan(20);
  });
});

type Stub = ReturnType<typeof env.REQUESTS.get>;

/** The real request namespace, with `hook` run around one method of every stub it hands out. */
function requestsWith(method: "create" | "revoke", hook: (call: (...args: unknown[]) => Promise<unknown>, args: unknown[]) => Promise<unknown>) {
  return {
    idFromName: (name: string) => env.REQUESTS.idFromName(name),
    get: (id: DurableObjectId): Stub => {
      const stub = env.REQUESTS.get(id);
      return new Proxy(stub, {
        get(target, property) {
          const value = (target as unknown as Record<PropertyKey, unknown>)[property];
          if (property !== method || typeof value !== "function") return value;
          return (...args: unknown[]) => hook((...a: unknown[]) => Reflect.apply(value as (...x: unknown[]) => Promise<unknown>, target, a) as Promise<unknown>, args);
        },
      });
    },
  } as unknown as typeof env.REQUESTS;
}

async function fetchWith(testEnv: Env, request: Request): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await worker.fetch(request, testEnv, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

const requestStatus = (userCode: string) =>
  runInDurableObject(env.REQUESTS.get(env.REQUESTS.idFromName(normalized(userCode))), (_instance, state) =>
    readRow(state.storage.kv)?.status ?? null,
  );

describe("revocation has no gaps", () => {
  it("an approved request of a deleted agent keeps no credential: its stored payload goes with the revocation", async () => {
    const { apiKey, accountId, agentId, operatorEmail } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    await approve(issued.user_code, operatorEmail, "sk_revoked");
    const stored = () => runInDurableObject(env.REQUESTS.get(env.REQUESTS.idFromName(normalized(issued.user_code))), (_i, state) => readRow(state.storage.kv));
    expect((await stored())?.payload).toEqual(expect.any(String));
    expect((await call("DELETE", `/v1/admin/accounts/${accountId}/agents/${agentId}`, { headers: admin })).status).toBe(204);
    expect(await stored()).toMatchObject({ status: "denied", payload: null });
    expect((await poll(issued.device_code)).body.error).toBe("access_denied");
  });

  it("a failed revocation answers 503 and the retried DELETE finishes it (never 500, then 404)", async () => {
    const { accountId, agentId, apiKey, operatorEmail } = await newAgent();
    const issued = await requestCredential(apiKey);
    let failures = 1;
    const flaky = { ...env, REQUESTS: requestsWith("revoke", async (revoke, args) => {
      if (failures-- > 0) throw new Error("the request object could not be reached");
      return revoke(...args);
    }) };
    const remove = () => fetchWith(flaky, new Request(`https://keyferry.test/v1/admin/accounts/${accountId}/agents/${agentId}`, { method: "DELETE", headers: admin }));

    const first = await remove();
    expect(first.status).toBe(503);
    expect(await first.json()).toMatchObject({ error: "server_error" });
    expect(await requestStatus(issued.body.user_code)).toBe("pending");
    const retry = await remove();
    expect(retry.status).toBe(204);
    expect(await requestStatus(issued.body.user_code)).toBe("denied");
    expect((await lookupAs(issued.body.user_code, operatorEmail)).status).toBe(404);
    expect((await poll(issued.body.device_code)).body.error).toBe("access_denied");
    // Done: a third DELETE has nothing left to do.
    expect((await remove()).status).toBe(404);
  });

  it("a request whose object is created while its agent is deleted does not escape the revocation", async () => {
    const { accountId, agentId, apiKey, operatorEmail } = await newAgent();
    let userCode: string | null = null;
    const racing = { ...env, REQUESTS: requestsWith("create", async (create, args) => {
      userCode = (args[0] as { details: { userCode: string } }).details.userCode;
      // The admin deletes the agent after its slot was taken and before its request object exists.
      const deleted = await exports.default.fetch(new Request(`https://keyferry.test/v1/admin/accounts/${accountId}/agents/${agentId}`, { method: "DELETE", headers: admin }));
      expect(deleted.status).toBe(204);
      return create(...args);
    }) };
    // The account creates the request object (AccountDO.issue): its own namespace is the one raced.
    await runInDurableObject(env.ACCOUNTS.get(env.ACCOUNTS.idFromName(accountId)), (instance) => {
      (instance as unknown as { env: Env }).env = racing;
    });
    const answer = await exports.default.fetch(
      new Request("https://keyferry.test/v1/credentials/request", {
        method: "POST",
        headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json", "CF-Connecting-IP": "192.0.2.1" },
        body: JSON.stringify({ description: "d", vault_key: "v" }),
      }),
    );
    expect(answer.status).toBe(401);
    expect(await answer.json()).toMatchObject({ error: "invalid_client" });
    expect(userCode).not.toBeNull();
    expect(await requestStatus(userCode!)).toBe("denied");
    expect((await lookupAs(userCode!, operatorEmail)).status).toBe(404);
    // Its notice rode on the `requested` row (durable-objects/account/notify/owed.ts): withdrawn unsent, nothing of it kept.
    const owed = await runInDurableObject(env.ACCOUNTS.get(env.ACCOUNTS.idFromName(accountId)), (_i, state) =>
      state.storage.sql.exec("SELECT owed FROM audit WHERE type = 'requested' AND owed IS NOT NULL").toArray(),
    );
    expect(owed).toEqual([]);
  });
});
