import type { JWK } from "jose";
import type { RequestState } from "../../core/request-state";

export interface AgentIdentity {
  id: string;
  name: string;
  email: string | null;
}

/** What a request is, fixed at creation. Stored as JSON in `request.details`. */
export interface RequestDetails {
  requestId: string;
  userCode: string;
  accountId: string;
  /** The account's name at creation (absent in requests made before it was kept). */
  accountName?: string;
  agent: AgentIdentity;
  /** Hash of the API key that made the request: the OAuth token endpoint must see the same client. */
  apiKeyHash: string;
  /** Lower-cased; the operator must type it to look the request up. */
  operatorEmail: string;
  description: string;
  vaultKey: string;
  bindingMessage: string | null;
  protocol: "device" | "ciba";
  /** The agent's own ECDH key: end-to-end mode. */
  publicKey: JWK | null;
  /** The key the credential is encrypted to: `publicKey`, or the request's own key pair. */
  encryptionKey: JWK;
  /** Plain mode: the request's private key as a JWE under the device-code secret. */
  wrappedPrivateKey: string | null;
  /** CIBA ping mode (CIBA Core §10.2): where and with which bearer to say the request was decided. */
  ping: PingTarget | null;
  /** RFC 9449 §10: the thumbprint of the DPoP key every poll must prove; null (or absent, in rows
   * written before v1.1) for an unbound request. */
  dpopJkt?: string | null;
  createdAt: number;
  /**
   * The look-up that claimed the request (who, from where, when), stored in the claim's own row
   * write and audited as `looked_up` with the decision or expiry that follows: one call to the
   * account instead of two (bench/README.md, "Cost per handoff").
   */
  lookedUp?: { at: number; detail: Record<string, string> };
}

export interface PingTarget {
  endpoint: string;
  token: string;
  /** Not a secret on its own: polling needs the agent's API key too, which also wraps the payload key. */
  authReqId: string;
}

export interface RequestRecord extends RequestState {
  details: RequestDetails;
  /** The handle's HMAC tag (worker/handles.ts): a keyed hash of the handle and its secret. */
  handleTag: string;
}

/** What the approval page may show of a request. */
export interface RequestView {
  requestId: string;
  userCode: string;
  accountId: string;
  /** Null for a request made before the name was kept with it. */
  accountName: string | null;
  operatorEmail: string;
  agent: AgentIdentity;
  description: string;
  vaultKey: string;
  bindingMessage: string | null;
  publicKey: JWK | null;
  encryptionKey: JWK;
  expiresAt: number;
  protocol: "device" | "ciba";
}

export type CreateResult = { reason: "created" } | { reason: "collision" };

export type PollResult =
  | { reason: "authorization_pending" | "access_denied" | "expired_token" | "invalid_grant" | "invalid_client" | "invalid_dpop_proof" }
  | { reason: "slow_down"; interval: number }
  | { reason: "delivered"; details: RequestDetails; payload: string };

/** A poll's DPoP proof, checked by the worker (core/dpop.ts): whose key signed it, and its `jti`. */
export interface PollProof {
  jkt: string;
  jti: string;
}

/** Who is calling, for the audit log. */
export interface Actor {
  ip: string;
  userAgent: string;
}

export interface DecideInput {
  sessionHash: string;
  decision: "approve" | "deny";
  payload: string | null;
  actor: Actor;
  /** The request the approval token was made for (issue 11): a mismatch is invalid_token. Optional
   * until every token carries it. */
  requestId?: string | null;
}

/** The return channel's messages (README, "Contract notes": return channel). */
export type WaitMessage = { type: "decided"; status: "approved" | "denied" } | { type: "expired" };

export type LookupResult =
  | { reason: "ok"; view: RequestView }
  | { reason: "not_found" | "locked" | "already_claimed" }
  | { reason: "wrong_email"; locked: boolean };

export type DecideResult =
  | { reason: "approved" | "denied"; details: RequestDetails }
  | { reason: "invalid_token" };
