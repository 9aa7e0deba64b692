/**
 * Issuance, shared by `/v1/credentials/request`, `/oauth/device_authorization` (RFC 8628 §3.1–3.2)
 * and `/oauth/bc-authorize` (CIBA Core §7): one state machine whatever the protocol.
 */
import type { JWK } from "jose";
import { MIN_REQUESTED_EXPIRY_SECONDS } from "../core/limits";
import { generateUserCode } from "../core/user-code";
import type { AgentIdentity } from "../durable-objects/request/request-types";
import type { AgentCredentials } from "./auth";
import { pollIntervalSeconds, requestTtlSeconds } from "./config";
import { HttpError, invalidClient } from "./errors";
import { signHandle, type HandleKind } from "./handles";
import { newRequestId } from "./ids";
import { approvalUrl } from "./approval-link";
import { createRequestKeyPair } from "./request-keys";
import { accountStub } from "./stubs";

export interface IssueInput {
  description: string;
  vaultKey: string;
  publicKey: JWK | null;
  /** How the operator is reached: a typed code ("device"), or a pushed link ("ciba"). */
  protocol: "device" | "ciba";
  /**
   * What the agent polls with. A device code carries the secret that unwraps the payload key; an
   * auth_req_id is always used with client authentication, so its payload key is wrapped under
   * the agent's API key instead, and the auth_req_id may be kept for a CIBA ping.
   */
  handle: HandleKind;
  bindingMessage?: string | null;
  /** CIBA `requested_expiry`, capped by the configured lifetime. */
  requestedExpirySeconds?: number | null;
  ping?: { endpoint: string; token: string } | null;
  /** RFC 9449 §10: the thumbprint of the DPoP key every poll must prove. */
  dpopJkt?: string | null;
}

export interface IssuedRequest {
  /** The device code or auth_req_id (worker/handles.ts): the agent's only handle on the request. */
  handle: string;
  userCode: string;
  requestId: string;
  expiresAt: number;
  interval: number;
  agent: AgentIdentity;
  operatorEmail: string;
  pingEndpoint: string | null;
}

/** A user code is the object's name; a draw that hits a live request is retried (DESIGN.md). */
const MAX_CODE_DRAWS = 4;

/**
 * One call to the account (bench/README.md, "Cost per handoff"): it authenticates the agent, holds
 * the caps, creates the request object and stores the operator's notice. The worker draws the user
 * code and signs what only it can sign (the handle, the approval link) beforehand.
 */
export async function issueRequest(env: Env, credentials: AgentCredentials, input: IssueInput): Promise<IssuedRequest> {
  const now = Date.now();
  const configured = requestTtlSeconds(env);
  // A requested expiry is raised to a floor, so a stream of 1-second requests cannot churn the
  // account's slots (and the operator's inbox); the configured lifetime stays the ceiling.
  const requested = input.requestedExpirySeconds ?? configured;
  const ttlSeconds = Math.min(configured, Math.max(requested, MIN_REQUESTED_EXPIRY_SECONDS));
  const expiresAt = now + ttlSeconds * 1000;
  const interval = pollIntervalSeconds(env);
  const secret = crypto.getRandomValues(new Uint8Array(32));
  const wrapSecret = input.handle === "auth_req_id" ? new TextEncoder().encode(credentials.apiKey) : secret;
  const keys = input.publicKey ? { publicJwk: input.publicKey, wrappedPrivateKey: null } : await createRequestKeyPair(wrapSecret);
  const account = accountStub(env, credentials.accountId);
  const requestId = newRequestId();

  for (let draw = 0; draw < MAX_CODE_DRAWS; draw++) {
    const userCode = generateUserCode();
    const { handle, tag } = await signHandle(env, input.handle, { userCode, expiresAt, secret });
    const issued = await account.issue({
      agentId: credentials.agentId,
      keyHash: credentials.keyHash,
      requestId,
      userCode,
      expiresAt,
      interval,
      handleTag: tag,
      details: {
        requestId,
        userCode,
        accountId: credentials.accountId,
        apiKeyHash: credentials.keyHash,
        description: input.description,
        vaultKey: input.vaultKey,
        bindingMessage: input.bindingMessage ?? null,
        protocol: input.protocol,
        publicKey: input.publicKey,
        encryptionKey: keys.publicJwk,
        wrappedPrivateKey: keys.wrappedPrivateKey,
        ping: input.ping ? { ...input.ping, authReqId: handle } : null,
        dpopJkt: input.dpopJkt ?? null,
        createdAt: now,
      },
      approvalUrl: await approvalUrl(env, { userCode, requestId, expiresAt }),
      auditDetail: { protocol: input.protocol, vault_key: input.vaultKey, end_to_end: input.publicKey !== null },
    });
    switch (issued.reason) {
      case "invalid_client":
        throw invalidClient(credentials.basic, "account: unknown agent or key hash at issuance, or the agent was deleted meanwhile");
      case "too_many_requests":
        throw new HttpError(
          429,
          "too_many_requests",
          issued.cause === "rate_limited"
            ? "This agent has opened the most requests it may in a minute; wait and ask again."
            : "This account already has the most active requests it may have.",
          { "Retry-After": String(issued.retryAfterSeconds) },
        );
      case "collision":
        continue;
      case "ok":
        return { handle, userCode, requestId, expiresAt, interval, agent: issued.agent, operatorEmail: issued.operatorEmail, pingEndpoint: issued.pingEndpoint };
    }
  }
  throw new HttpError(503, "server_error", "Could not allocate a user code; try again.", { "Retry-After": "1" });
}
