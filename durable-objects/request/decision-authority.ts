/**
 * Who is deciding a request (DESIGN.md, v1.2 "Who decides"): the RequestDO issues single-use
 * challenges that commit to the request, the decision and the payload's digest, and turns a
 * decision's WebAuthn assertion into the `DecisionAuthority` that core/request-state.ts's `decide`
 * requires. The signature is checked by @simplewebauthn/server (core/webauthn.ts) against the passkey
 * the request's own account holds, so another account's passkey, or a removed operator's, is unknown.
 */
import { base64url } from "jose";
import type { DecisionAuthority, DecisionCommitment } from "../../core/request-state";
import { challengeOf, verifyAssertion, type AuthenticationResponseJSON, type RelyingParty } from "../../core/webauthn";
import type { DecisionActor } from "../account/account-types";
import type { OperatorPasskey } from "../account/operator-types";
import type { Actor } from "./request-types";

/** A challenge lasts 5 minutes, and a request holds at most this many unused ones (oldest dropped). */
export const DECISION_CHALLENGE_TTL_MS = 5 * 60 * 1000;
const MAX_LIVE_CHALLENGES = 8;

export const DECISION_CHALLENGE_SCHEMA =
  "CREATE TABLE IF NOT EXISTS decision_challenges (challenge TEXT PRIMARY KEY, request_id TEXT NOT NULL, decision TEXT NOT NULL, payload_sha256 TEXT, expires_at INTEGER NOT NULL)";

type ChallengeRow = { challenge: string; request_id: string; decision: "approve" | "deny"; payload_sha256: string | null; expires_at: number };

const encoder = new TextEncoder();

/**
 * The challenge bytes are SHA-256 over a fresh nonce and the commitment, so the signed
 * clientDataJSON itself names what was approved; the row is what makes it single use.
 */
export async function newChallenge(commitment: Omit<DecisionCommitment, "expiresAt">): Promise<string> {
  const nonce = crypto.getRandomValues(new Uint8Array(32));
  const statement = encoder.encode(["keyferry decision v1", commitment.requestId, commitment.decision, commitment.payloadSha256 ?? ""].join("\n"));
  const message = new Uint8Array(nonce.byteLength + statement.byteLength);
  message.set(nonce);
  message.set(statement, nonce.byteLength);
  return base64url.encode(new Uint8Array(await crypto.subtle.digest("SHA-256", message)));
}

/**
 * The table is made by a request's first challenge: a `CREATE TABLE` is rows written (bench/README.md,
 * "Cost per handoff"), and a request of an account without passkeys never asks for one.
 */
export class DecisionChallenges {
  /** Whether the table exists; null until read (a new request's `forget` sets it to false). */
  #made: boolean | null = null;

  constructor(private readonly sql: SqlStorage) {}

  /** A new request replaced the tables (RequestDO.create drops this one). */
  forget(): void {
    this.#made = false;
  }

  #exists(): boolean {
    this.#made ??= this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'decision_challenges'").toArray().length > 0;
    return this.#made;
  }

  store(challenge: string, commitment: DecisionCommitment, now: number): void {
    if (!this.#exists()) this.sql.exec(DECISION_CHALLENGE_SCHEMA);
    this.#made = true;
    this.sql.exec("DELETE FROM decision_challenges WHERE expires_at <= ?", now);
    this.sql.exec(
      "INSERT INTO decision_challenges (challenge, request_id, decision, payload_sha256, expires_at) VALUES (?, ?, ?, ?, ?)",
      challenge,
      commitment.requestId,
      commitment.decision,
      commitment.payloadSha256,
      commitment.expiresAt,
    );
    this.sql.exec(
      "DELETE FROM decision_challenges WHERE challenge NOT IN (SELECT challenge FROM decision_challenges ORDER BY expires_at DESC LIMIT ?)",
      MAX_LIVE_CHALLENGES,
    );
  }

  /** The challenge's commitment, consumed: whatever the assertion turns out to be, it cannot be tried twice. */
  take(challenge: string): DecisionCommitment | null {
    if (!this.#exists()) return null;
    const row = this.sql.exec<ChallengeRow>("SELECT * FROM decision_challenges WHERE challenge = ?", challenge).toArray()[0];
    if (!row) return null;
    this.sql.exec("DELETE FROM decision_challenges WHERE challenge = ?", challenge);
    return { requestId: row.request_id, decision: row.decision, payloadSha256: row.payload_sha256, expiresAt: row.expires_at };
  }

  clear(): void {
    if (this.#exists()) this.sql.exec("DELETE FROM decision_challenges");
  }
}

/** The passkey behind a verified assertion, for the audit and the counter update. */
export interface Signer {
  passkey: OperatorPasskey;
  newCounter: number;
  userVerified: boolean;
}

export interface AccountPasskeys {
  decisionPasskeys(): Promise<{ required: boolean }>;
  operatorPasskey(credentialId: string): Promise<OperatorPasskey | null>;
}

/**
 * Establishes the decision's authority. Without an assertion: the email binding, unless the account
 * has a passkey or the deployment requires one (`REQUIRE_PASSKEY`). With one: its challenge is taken
 * (consumed) first, then the passkey is looked up in the request's account and the signature checked.
 */
export async function establishAuthority(
  webauthn: AuthenticationResponseJSON | null,
  context: { account: AccountPasskeys; challenges: DecisionChallenges; party: RelyingParty; requirePasskey: boolean },
): Promise<{ authority: DecisionAuthority; signer: Signer | null }> {
  if (webauthn === null) {
    const { required } = await context.account.decisionPasskeys();
    if (required || context.requirePasskey) return { authority: { kind: "missing", enrolled: required }, signer: null };
    return { authority: { kind: "email_binding" }, signer: null };
  }
  const unverified = (why: string) => {
    console.warn(`decision assertion refused: ${why}`);
    return { authority: { kind: "unverified" } as const, signer: null };
  };
  const challenge = challengeOf(webauthn);
  const committed = challenge ? context.challenges.take(challenge) : null;
  if (!challenge || !committed) return unverified("no such challenge (used, expired, or issued for another request)");
  const passkey = await context.account.operatorPasskey(webauthn.id);
  if (!passkey) return unverified("not a passkey of this account (another account's, or its operator was removed)");
  const verified = await verifyAssertion(webauthn, challenge, context.party, passkey.credential);
  if (verified.reason !== "ok") return unverified(`${verified.reason}: ${verified.detail}`);
  return {
    authority: {
      kind: "passkey",
      userVerified: verified.userVerified,
      committed,
      operator: { operatorId: passkey.operator.operatorId, email: passkey.operator.email, passkeyId: passkey.credential.credentialId },
    },
    signer: { passkey, newCounter: verified.newCounter, userVerified: verified.userVerified },
  };
}

/** The decision's audit actor (README, "Operators and passkeys"); passkey fields null under the email binding. */
export function decisionActor(signer: Signer | null, operatorEmail: string, caller: Actor): DecisionActor {
  return {
    operator_id: signer?.passkey.operator.operatorId ?? null,
    email: signer?.passkey.operator.email ?? operatorEmail,
    passkey_id: signer?.passkey.credential.credentialId ?? null,
    aaguid: signer?.passkey.aaguid ?? null,
    user_verified: signer ? signer.userVerified : null,
    ip: caller.ip,
    user_agent: caller.userAgent.slice(0, 256),
  };
}
