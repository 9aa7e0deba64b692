/**
 * What a passkey costs a decision (README, "Operators and passkeys"): the same handoff decided under
 * the email binding and by a passkey (the test suite's software authenticator: a real P-256
 * assertion, checked by @simplewebauthn/server in the worker), one at a time so the round trips are
 * the server's. Reports the decide round trip p50/p99 for both, and the challenge's for the passkey.
 * Rows and Durable Object calls per decision are pinned by test/integration/passkey-cost.test.ts.
 */
import { base64url } from "jose";
import type { AccountBody, AgentCreatedBody, DeviceAuthorizationBody, EnrolOptionsBody, LookupAnswerBody, PasskeyChallengeAnswerBody } from "../core/wire.ts";
import { SoftAuthenticator } from "../test/integration/support/soft-authenticator.ts";
import { api, nextIp, percentile } from "./client.ts";
import { round } from "./load.ts";

interface Account {
  email: string;
  apiKeys: string[];
  authenticator: SoftAuthenticator | null;
}

/** Per-agent issuance is capped at 10 a minute: enough agents that the cap never bites. */
const AGENTS_PER_ACCOUNT = 8;

async function account(base: string, adminToken: string, passkey: boolean): Promise<Account> {
  const admin = { Authorization: `Bearer ${adminToken}` };
  const email = `bench-${crypto.randomUUID()}@bench.example`;
  const made = await api<AccountBody>(base, "POST", "/v1/admin/accounts", { name: "bench passkeys", operator_email: email }, admin);
  const apiKeys: string[] = [];
  for (let i = 0; i < AGENTS_PER_ACCOUNT; i++) {
    const agent = await api<AgentCreatedBody>(base, "POST", `/v1/admin/accounts/${made.json.account_id}/agents`, { name: `bench-${i}` }, admin);
    apiKeys.push(agent.json.api_key);
  }
  if (!passkey) return { email, apiKeys, authenticator: null };
  const invitation = made.json.invitation_url!.split("#invite=")[1]!;
  const origin = { Origin: new URL(base).origin };
  const authenticator = new SoftAuthenticator(new URL(base).origin);
  const options = await api<EnrolOptionsBody>(base, "POST", "/v1/console/enrol/options", { invitation }, origin);
  const webauthn = await authenticator.register(options.json.public_key as unknown as Record<string, unknown>);
  const enrolled = await api(base, "POST", "/v1/console/enrol", { invitation, webauthn }, origin);
  if (enrolled.status !== 201) throw new Error(`enrol: ${enrolled.status} ${JSON.stringify(enrolled.json)}`);
  return { email, apiKeys, authenticator };
}

const digest = async (value: string) => base64url.encode(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value))));

/** One handoff: issue, look up, (challenge and sign,) decide timed, then the poll that frees the slot. */
async function handoff(base: string, account: Account, index: number): Promise<{ decideMs: number; challengeMs: number | null }> {
  const apiKey = account.apiKeys[index % account.apiKeys.length]!;
  const issued = await api<DeviceAuthorizationBody>(base, "POST", "/v1/credentials/request", { description: "bench", vault_key: "bench-key" }, { Authorization: `Bearer ${apiKey}` });
  const looked = await api<LookupAnswerBody>(base, "POST", "/v1/approvals/lookup", { user_code: issued.json.user_code, email: account.email }, { "CF-Connecting-IP": nextIp() });
  const cookie = looked.headers.get("Set-Cookie")?.split(";")[0] ?? "";
  const value = `sk_bench_${index}`;
  const body: Record<string, unknown> = { approval_token: looked.json.approval_token, decision: "approve", credential_value: value };
  let challengeMs: number | null = null;
  if (account.authenticator) {
    const started = performance.now();
    const challenge = await api<PasskeyChallengeAnswerBody>(base, "POST", "/v1/approvals/challenge", { approval_token: looked.json.approval_token, decision: "approve", payload_sha256: await digest(value) }, { Cookie: cookie });
    challengeMs = performance.now() - started;
    body.webauthn = await account.authenticator.assert(challenge.json.public_key as unknown as Record<string, unknown>);
  }
  const started = performance.now();
  const decided = await api(base, "POST", "/v1/approvals/decide", body, { Cookie: cookie });
  const decideMs = performance.now() - started;
  if (decided.status !== 200) throw new Error(`decide: ${decided.status} ${JSON.stringify(decided.json)}`);
  await api(base, "POST", "/v1/credentials/poll", { device_code: issued.json.device_code });
  return { decideMs, challengeMs };
}

const summary = (samples: number[]) => {
  const sorted = samples.slice().sort((a, b) => a - b);
  return { n: sorted.length, p50_ms: round(percentile(sorted, 50)), p99_ms: round(percentile(sorted, 99)) };
};

export async function measurePasskeyDecision(base: string, adminToken: string, handoffs: number) {
  const [email, passkey] = [await account(base, adminToken, false), await account(base, adminToken, true)];
  const emailRuns: number[] = [];
  const passkeyRuns: number[] = [];
  const challenges: number[] = [];
  // Interleaved, so both see the same machine.
  for (let i = 0; i < handoffs; i++) {
    emailRuns.push((await handoff(base, email, i)).decideMs);
    const signed = await handoff(base, passkey, i);
    passkeyRuns.push(signed.decideMs);
    challenges.push(signed.challengeMs!);
  }
  const byEmail = summary(emailRuns);
  const byPasskey = summary(passkeyRuns);
  return {
    decide_email_binding: byEmail,
    decide_passkey: byPasskey,
    challenge: summary(challenges),
    decide_p50_ratio: round(byPasskey.p50_ms / byEmail.p50_ms, 2),
  };
}
