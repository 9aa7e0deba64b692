/** The AccountDO's operators, passkeys and console sessions as its RPC methods return them. */
import type { StoredCredential } from "../../core/webauthn";

export type OperatorRole = "owner" | "approver";

export interface Operator {
  operatorId: string;
  email: string;
  name: string;
  role: OperatorRole;
}

export interface PasskeySummary {
  /** The WebAuthn credential ID (base64url). */
  passkeyId: string;
  aaguid: string;
  /** Unix ms. */
  createdAt: number;
  lastUsedAt: number | null;
}

export interface OperatorWithPasskeys extends Operator {
  passkeys: PasskeySummary[];
}

/** A passkey with its operator: what a decision's verification needs. */
export interface OperatorPasskey {
  operator: Operator;
  credential: StoredCredential;
  aaguid: string;
}

/** What the worker signed for a new operator: only the invitation's hash is stored. */
export interface NewOperatorInput {
  operator: Operator;
  invitationHash: string;
  invitationExpiresAt: number;
  /** The email, built by the worker (link only from PUBLIC_BASE_URL); sent through the outbox. */
  invitationEmail: { subject: string; text: string };
}

export type AddOperatorResult = { reason: "created"; operator: Operator } | { reason: "not_found" } | { reason: "email_taken" };
export type ListOperatorsResult = { reason: "found"; operators: OperatorWithPasskeys[] } | { reason: "not_found" };
export type RemoveOperatorResult = { reason: "removed" } | { reason: "not_found" };

/** An invitation is single use and lasts 24 h; any other state of it is one refusal. */
export type BeginEnrolmentResult =
  | { reason: "ok"; operator: Operator; excludeCredentialIds: string[] }
  | { reason: "invalid_invitation" };

export type CompleteEnrolmentResult =
  | { reason: "enrolled"; operator: Operator; passkeyId: string }
  | { reason: "invalid_invitation" }
  | { reason: "refused"; detail: string };

export type SignInResult = { reason: "signed_in"; operator: Operator } | { reason: "refused"; detail: string };

export type SessionResult = { reason: "ok"; operator: Operator; expiresAt: number } | { reason: "invalid_session" };

/** What a decision on one of the account's requests needs to know of its passkeys. */
export interface DecisionPasskeys {
  /** Some operator of the account holds a passkey: decisions need one. */
  required: boolean;
  /** allowCredentials for the challenge (§5.4.4). */
  credentials: { id: string; transports: string[] }[];
}
