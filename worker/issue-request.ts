/**
 * Issuance, shared by `/v1/credentials/request`, `/oauth/device_authorization` (RFC 8628 §3.1–3.2)
 * and `/oauth/bc-authorize` (CIBA Core §7): one state machine whatever the protocol.
 */
import { base64url, type JWK } from "jose";
import { generateUserCode } from "../core/user-code";
import type { AgentIdentity, RequestDetails } from "../durable-objects/request-types";
import type { AgentCredentials } from "./auth";
import { pollIntervalSeconds, requestTtlSeconds } from "./config";
import { HttpError } from "./errors";
import { sha256 } from "./hashing";
import { newRequestId } from "./ids";
import { createRequestKeyPair } from "./request-keys";
import { accountStub, requestStub } from "./stubs";
import { signToken, type TokenKind } from "./tokens";

export interface IssueInput {
  description: string;
  vaultKey: string;
  publicKey: JWK | null;
  protocol: "device" | "ciba";
  bindingMessage: string | null;
  /** CIBA `requested_expiry`, capped by the configured lifetime. */
  requestedExpirySeconds: number | null;
  ping: { endpoint: string; token: string } | null;
}

export interface IssuedRequest {
  /** The signed device code or auth_req_id: the agent's only handle on the request. */
  handle: string;
  userCode: string;
  requestId: string;
  expiresAt: number;
  interval: number;
  agent: AgentIdentity;
  operatorEmail: string;
  webhook: { url: string; secret: string } | null;
  details: RequestDetails;
}

/** A user code is the object's name; a draw that hits a live request is retried (DESIGN.md). */
const MAX_CODE_DRAWS = 4;

export async function issueRequest(env: Env, credentials: AgentCredentials, input: IssueInput): Promise<IssuedRequest> {
  const now = Date.now();
  const ttlSeconds = Math.min(requestTtlSeconds(env), input.requestedExpirySeconds ?? Number.POSITIVE_INFINITY);
  const expiresAt = now + ttlSeconds * 1000;
  const interval = pollIntervalSeconds(env);
  const secret = crypto.getRandomValues(new Uint8Array(32));
  const [secretHash, keys] = await Promise.all([
    sha256(secret),
    input.publicKey ? { publicJwk: input.publicKey, wrappedPrivateKey: null } : createRequestKeyPair(secret),
  ]);
  const account = accountStub(env, credentials.accountId);
  const requestId = newRequestId();

  for (let draw = 0; draw < MAX_CODE_DRAWS; draw++) {
    const userCode = generateUserCode();
    const opened = await account.openRequest({
      agentId: credentials.agentId,
      keyHash: credentials.keyHash,
      requestId,
      userCode,
      expiresAt,
      detail: { protocol: input.protocol, vault_key: input.vaultKey, end_to_end: input.publicKey !== null },
    });
    switch (opened.reason) {
      case "invalid_client":
        throw new HttpError(401, "invalid_client", "Client authentication failed.", { "WWW-Authenticate": 'Bearer realm="keyferry"' });
      case "too_many_requests":
        throw new HttpError(429, "too_many_requests", "This account already has the most active requests it may have.", {
          "Retry-After": String(opened.retryAfterSeconds),
        });
      case "ok":
        break;
    }
    const details: RequestDetails = {
      requestId,
      userCode,
      accountId: credentials.accountId,
      agent: opened.agent,
      apiKeyHash: credentials.keyHash,
      operatorEmail: opened.operatorEmail.trim().toLowerCase(),
      description: input.description,
      vaultKey: input.vaultKey,
      bindingMessage: input.bindingMessage,
      protocol: input.protocol,
      publicKey: input.publicKey,
      encryptionKey: keys.publicJwk,
      wrappedPrivateKey: keys.wrappedPrivateKey,
      ping: input.ping,
      createdAt: now,
    };
    const created = await requestStub(env, userCode).create({ details, secretHash, expiresAt, interval });
    if (created.reason === "collision") {
      await account.releaseRequest(requestId);
      continue;
    }
    const kind: TokenKind = input.protocol === "ciba" ? "auth_req_id" : "device_code";
    const handle = await signToken(env, kind, { uc: userCode, sec: base64url.encode(secret) }, expiresAt);
    return { handle, userCode, requestId, expiresAt, interval, agent: opened.agent, operatorEmail: opened.operatorEmail, webhook: opened.webhook, details };
  }
  throw new HttpError(503, "server_error", "Could not allocate a user code; try again.", { "Retry-After": "1" });
}
