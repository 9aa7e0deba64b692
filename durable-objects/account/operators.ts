/**
 * An account's operators, their passkeys, invitations and console sessions (durable-objects/account/README.md,
 * "Operators and passkeys"), in the AccountDO's SQLite. Synchronous storage steps for the AccountDO's
 * RPC methods, plus the two ceremonies that verify a WebAuthn response (core/webauthn.ts) and then
 * re-check what they read before writing, since the verification awaits.
 * Only hashes are kept of invitation tokens and session ids.
 */
import { verifyAssertion, verifyEnrolment, type AuthenticationResponseJSON, type RegistrationResponseJSON, type RelyingParty } from "../../core/webauthn";
import type {
  BeginEnrolmentResult,
  CompleteEnrolmentResult,
  DecisionPasskeys,
  Operator,
  OperatorPasskey,
  OperatorRole,
  OperatorWithPasskeys,
  SessionResult,
  SignInResult,
} from "./operator-types";

export const OPERATOR_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS operators (
    operator_id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS passkeys (
    credential_id TEXT PRIMARY KEY,
    operator_id TEXT NOT NULL,
    public_key TEXT NOT NULL,
    counter INTEGER NOT NULL,
    aaguid TEXT NOT NULL,
    transports TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
  )`,
  "CREATE INDEX IF NOT EXISTS passkeys_by_operator ON passkeys (operator_id)",
  // `challenge`: the registration challenge last handed out for this invitation (one at a time).
  "CREATE TABLE IF NOT EXISTS invitations (token_hash TEXT PRIMARY KEY, operator_id TEXT NOT NULL, expires_at INTEGER NOT NULL, challenge TEXT)",
  "CREATE TABLE IF NOT EXISTS console_sessions (session_hash TEXT PRIMARY KEY, operator_id TEXT NOT NULL, expires_at INTEGER NOT NULL, created_at INTEGER NOT NULL)",
  // Sign-in challenges are signed by the worker, not stored when issued; one that signed someone in
  // is kept here until it expires, so it cannot sign anyone in again.
  "CREATE TABLE IF NOT EXISTS used_sign_in_challenges (challenge TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)",
];

type OperatorRow = { operator_id: string; email: string; name: string; role: string };
type PasskeyRow = {
  credential_id: string;
  operator_id: string;
  public_key: string;
  counter: number;
  aaguid: string;
  transports: string;
  created_at: number;
  last_used_at: number | null;
};

export interface SessionOpening {
  sessionHash: string;
  expiresAt: number;
}

export class Operators {
  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly now: () => number = Date.now,
  ) {}

  get #sql(): SqlStorage {
    return this.storage.sql;
  }

  /**
   * A new operator with its invitation; or, for the operator already holding this email and ID, a
   * re-invitation (how a lost passkey is recovered): earlier invitations are withdrawn, name and
   * role kept. Null when the email belongs to another operator ID (a concurrent invite).
   */
  add(operator: Operator, invitationHash: string, invitationExpiresAt: number): Operator | null {
    const existing = this.#sql.exec<OperatorRow>("SELECT * FROM operators WHERE email = ?", operator.email).toArray()[0];
    if (existing && existing.operator_id !== operator.operatorId) return null;
    if (existing) {
      this.#sql.exec("DELETE FROM invitations WHERE operator_id = ?", operator.operatorId);
    } else {
      this.#sql.exec(
        "INSERT INTO operators (operator_id, email, name, role, created_at) VALUES (?, ?, ?, ?, ?)",
        operator.operatorId,
        operator.email,
        operator.name,
        operator.role,
        this.now(),
      );
    }
    this.#sql.exec("INSERT INTO invitations (token_hash, operator_id, expires_at) VALUES (?, ?, ?)", invitationHash, operator.operatorId, invitationExpiresAt);
    return existing ? operatorOf(existing) : operator;
  }

  /** The operator holding this email (case-insensitive), if any: a re-invitation keeps its ID. */
  byEmail(email: string): Operator | null {
    const row = this.#sql.exec<OperatorRow>("SELECT * FROM operators WHERE email = ?", email).toArray()[0];
    return row ? operatorOf(row) : null;
  }

  byId(operatorId: string): Operator | null {
    const row = this.#sql.exec<OperatorRow>("SELECT * FROM operators WHERE operator_id = ?", operatorId).toArray()[0];
    return row ? operatorOf(row) : null;
  }

  list(): OperatorWithPasskeys[] {
    const passkeys = this.#sql.exec<PasskeyRow>("SELECT * FROM passkeys ORDER BY created_at").toArray();
    return this.#sql
      .exec<OperatorRow>("SELECT * FROM operators ORDER BY created_at, operator_id")
      .toArray()
      .map((row) => ({
        ...operatorOf(row),
        passkeys: passkeys
          .filter((p) => p.operator_id === row.operator_id)
          .map((p) => ({ passkeyId: p.credential_id, aaguid: p.aaguid, createdAt: p.created_at, lastUsedAt: p.last_used_at })),
      }));
  }

  /** The operator, its passkeys, invitations and sessions go in one step: nothing of it works after. */
  remove(operatorId: string): Operator | null {
    const row = this.#operator(operatorId);
    if (!row) return null;
    this.storage.transactionSync(() => {
      for (const table of ["passkeys", "invitations", "console_sessions", "operators"]) {
        this.#sql.exec(`DELETE FROM ${table} WHERE operator_id = ?`, operatorId);
      }
    });
    return operatorOf(row);
  }

  /** A registration challenge for a live invitation; opening the invitation page alone changes nothing. */
  beginEnrolment(operatorId: string, invitationHash: string, challenge: string): BeginEnrolmentResult {
    const operator = this.#liveInvitation(operatorId, invitationHash);
    if (!operator) return { reason: "invalid_invitation" };
    this.#sql.exec("UPDATE invitations SET challenge = ? WHERE token_hash = ?", challenge, invitationHash);
    const excludeCredentialIds = this.#sql
      .exec<{ credential_id: string }>("SELECT credential_id FROM passkeys WHERE operator_id = ?", operatorId)
      .toArray()
      .map((row) => row.credential_id);
    return { reason: "ok", operator, excludeCredentialIds };
  }

  /**
   * Verifies the registration against the invitation's challenge; the invitation is consumed, the
   * passkey stored and a console session opened in one transaction, after re-checking that the
   * invitation is still unused (another tab may have used it during the verification).
   */
  async completeEnrolment(
    operatorId: string,
    invitationHash: string,
    response: RegistrationResponseJSON,
    party: RelyingParty,
    session: SessionOpening,
  ): Promise<CompleteEnrolmentResult> {
    const challenge = this.#invitationChallenge(operatorId, invitationHash);
    if (challenge === null) return { reason: "invalid_invitation" };
    const verified = await verifyEnrolment(response, challenge, party);
    if (verified.reason !== "ok") return verified;
    const { credential, aaguid } = verified;
    return this.storage.transactionSync((): CompleteEnrolmentResult => {
      if (this.#invitationChallenge(operatorId, invitationHash) !== challenge) return { reason: "invalid_invitation" };
      if (this.#sql.exec("SELECT 1 FROM passkeys WHERE credential_id = ?", credential.credentialId).toArray().length > 0) {
        return { reason: "refused", detail: "credential already enrolled" };
      }
      const now = this.now();
      this.#sql.exec("DELETE FROM invitations WHERE token_hash = ?", invitationHash);
      this.#sql.exec(
        "INSERT INTO passkeys (credential_id, operator_id, public_key, counter, aaguid, transports, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        credential.credentialId,
        operatorId,
        credential.publicKey,
        credential.counter,
        aaguid,
        JSON.stringify(credential.transports),
        now,
      );
      this.#openSession(operatorId, session, now);
      return { reason: "enrolled", operator: operatorOf(this.#operator(operatorId)!), passkeyId: credential.credentialId };
    });
  }

  /**
   * A discoverable-credential sign-in (the worker checked the challenge's signature and age). The
   * passkey must be this operator's (the user handle named it), user-verified, and the challenge
   * unused; the counter and last use are updated with the session's opening.
   */
  async signIn(
    operatorId: string,
    response: AuthenticationResponseJSON,
    challenge: { value: string; expiresAt: number },
    party: RelyingParty,
    session: SessionOpening,
  ): Promise<SignInResult> {
    const found = this.passkey(response.id);
    if (!found || found.operator.operatorId !== operatorId) return { reason: "refused", detail: "unknown credential" };
    const verified = await verifyAssertion(response, challenge.value, party, found.credential);
    if (verified.reason !== "ok") return verified.reason === "counter_regression" ? { reason: "refused", detail: `counter regression: ${verified.detail}` } : verified;
    if (!verified.userVerified) return { reason: "refused", detail: "user not verified" };
    return this.storage.transactionSync((): SignInResult => {
      const now = this.now();
      if (!this.passkey(response.id)) return { reason: "refused", detail: "passkey removed during sign-in" };
      this.#sql.exec("DELETE FROM used_sign_in_challenges WHERE expires_at <= ?", now);
      if (this.#sql.exec("SELECT 1 FROM used_sign_in_challenges WHERE challenge = ?", challenge.value).toArray().length > 0) {
        return { reason: "refused", detail: "challenge already used" };
      }
      this.#sql.exec("INSERT INTO used_sign_in_challenges (challenge, expires_at) VALUES (?, ?)", challenge.value, challenge.expiresAt);
      this.recordUse(response.id, verified.newCounter);
      this.#openSession(operatorId, session, now);
      return { reason: "signed_in", operator: found.operator };
    });
  }

  session(sessionHash: string): SessionResult {
    const row = this.#sql
      .exec<OperatorRow & { expires_at: number }>(
        "SELECT operators.*, console_sessions.expires_at FROM console_sessions JOIN operators USING (operator_id) WHERE session_hash = ?",
        sessionHash,
      )
      .toArray()[0];
    if (!row || row.expires_at <= this.now()) return { reason: "invalid_session" };
    return { reason: "ok", operator: operatorOf(row), expiresAt: row.expires_at };
  }

  endSession(sessionHash: string): void {
    this.#sql.exec("DELETE FROM console_sessions WHERE session_hash = ?", sessionHash);
  }

  /** A passkey of this account with its operator, or null (unknown here, or its operator removed). */
  passkey(credentialId: string): OperatorPasskey | null {
    const row = this.#sql
      .exec<PasskeyRow & OperatorRow>("SELECT passkeys.*, operators.email, operators.name, operators.role FROM passkeys JOIN operators USING (operator_id) WHERE credential_id = ?", credentialId)
      .toArray()[0];
    if (!row) return null;
    return {
      operator: operatorOf(row),
      aaguid: row.aaguid,
      credential: { credentialId: row.credential_id, publicKey: row.public_key, counter: row.counter, transports: JSON.parse(row.transports) as string[] },
    };
  }

  /** After a verified assertion: the authenticator's new counter (never lowered) and the time of use. */
  recordUse(credentialId: string, counter: number): void {
    this.#sql.exec("UPDATE passkeys SET counter = MAX(counter, ?), last_used_at = ? WHERE credential_id = ?", counter, this.now(), credentialId);
  }

  decisionPasskeys(): DecisionPasskeys {
    const credentials = this.#sql
      .exec<{ credential_id: string; transports: string }>("SELECT credential_id, transports FROM passkeys ORDER BY created_at")
      .toArray()
      .map((row) => ({ id: row.credential_id, transports: JSON.parse(row.transports) as string[] }));
    return { required: credentials.length > 0, credentials };
  }

  #openSession(operatorId: string, session: SessionOpening, now: number): void {
    this.#sql.exec("DELETE FROM console_sessions WHERE expires_at <= ?", now);
    this.#sql.exec(
      "INSERT INTO console_sessions (session_hash, operator_id, expires_at, created_at) VALUES (?, ?, ?, ?)",
      session.sessionHash,
      operatorId,
      session.expiresAt,
      now,
    );
  }

  #operator(operatorId: string): OperatorRow | undefined {
    return this.#sql.exec<OperatorRow>("SELECT * FROM operators WHERE operator_id = ?", operatorId).toArray()[0];
  }

  #liveInvitation(operatorId: string, invitationHash: string): Operator | null {
    const row = this.#sql
      .exec<OperatorRow>(
        "SELECT operators.* FROM invitations JOIN operators USING (operator_id) WHERE token_hash = ? AND operator_id = ? AND expires_at > ?",
        invitationHash,
        operatorId,
        this.now(),
      )
      .toArray()[0];
    return row ? operatorOf(row) : null;
  }

  #invitationChallenge(operatorId: string, invitationHash: string): string | null {
    if (!this.#liveInvitation(operatorId, invitationHash)) return null;
    return this.#sql.exec<{ challenge: string | null }>("SELECT challenge FROM invitations WHERE token_hash = ?", invitationHash).toArray()[0]?.challenge ?? null;
  }
}

const operatorOf = (row: OperatorRow): Operator => ({ operatorId: row.operator_id, email: row.email, name: row.name, role: row.role as OperatorRole });
