/** The approval page's JSON calls: `/v1/approvals/lookup` and `/v1/approvals/decide` (README, "Contract notes"). */
import type { IRequest } from "itty-router";
import type { JWK } from "jose";
import { z } from "zod";
import { formatUserCode, normalizeUserCode } from "../../core/user-code";
import type { Actor } from "../../durable-objects/request/request-do";
import type { LookupResult, RequestView } from "../../durable-objects/request/request-types";
import { existingSession, sessionFor } from "../approval-session";
import { approvalsJson } from "../approvals-json";
import { HttpError, badRequest } from "../errors";
import { actorOf, clientIp, json, readJson } from "../http";
import { rateLimitSubject } from "../ip";
import { challengeFieldsSchema, decideFieldsShape, decideRequest, issueDecisionChallenge, refineDecision, type DecisionTarget } from "../passkey-decision";
import { requestStub } from "../stubs";
import { signToken, stringClaim, verifyToken } from "../tokens";
import type { ApprovalRequestBody } from "../../core/wire";

const MAX_LOOKUP_BODY = 4 * 1024;
/** A 16 KiB value JSON-escaped at worst, or a 32 KiB JWE, with room to spare. */
const MAX_DECIDE_BODY = 128 * 1024;

const lookupSchema = z.union(
  [
    z.object({ user_code: z.string({ error: "must be a string" }).max(64), email: z.string({ error: "must be a string" }).max(320) }),
    z.object({ link_token: z.string({ error: "must be a string" }).max(4096) }),
  ],
  { error: "must have user_code and email, or link_token" },
);

const decideSchema = z.object({ approval_token: z.string({ error: "is required" }).max(8192), ...decideFieldsShape }).superRefine(refineDecision);
const challengeSchema = challengeFieldsSchema.extend({ approval_token: z.string({ error: "is required" }).max(8192) });

/**
 * Look-ups are limited twice: per caller (an IPv4 address or an IPv6 /64), and across the whole
 * deployment, so many addresses together cannot search the code space either (README, "Contract
 * notes"). A look-up without CF-Connecting-IP, which Cloudflare's edge and `wrangler dev` always set,
 * cannot be attributed to anyone: it is refused rather than pooled into one bucket.
 */
async function limitLookups(request: Request, env: Env): Promise<void> {
  const address = clientIp(request);
  if (!address) throw badRequest("The caller's address is unknown (no CF-Connecting-IP); look-ups are counted per address.");
  const perCaller = await env.LOOKUP_LIMITER.limit({ key: rateLimitSubject(address) });
  const global = perCaller.success ? await env.LOOKUP_GLOBAL_LIMITER.limit({ key: "all" }) : perCaller;
  if (!perCaller.success) throw new HttpError(429, "too_many_requests", "Too many look-ups from this address; wait a minute.", { "Retry-After": "60" });
  if (!global.success) throw new HttpError(429, "too_many_requests", "Too many look-ups right now; wait a minute.", { "Retry-After": "60" });
}

/** A look-up by code and email, or by a signed approval link; the first success claims the request. */
export async function lookup(request: IRequest, env: Env): Promise<Response> {
  await limitLookups(request, env);
  const body = await readJson(request, lookupSchema, MAX_LOOKUP_BODY);
  let userCode: string | null;
  let email: string | null = null;
  let linkRequestId: string | null = null;
  if ("link_token" in body) {
    const link = await verifyToken(env, "approval_link", body.link_token);
    userCode = link.reason === "ok" ? stringClaim(link.claims, "uc") : null;
    linkRequestId = link.reason === "ok" ? stringClaim(link.claims, "rid") : null;
    if (!linkRequestId) userCode = null;
  } else {
    userCode = normalizeUserCode(body.user_code);
    email = body.email;
  }
  if (!userCode) throw noMatch();
  const session = await sessionFor(request);
  const result = await requestStub(env, userCode).lookup({ email, linkRequestId, sessionHash: session.hash, actor: actorOf(request) });
  if (result.reason !== "ok") throw lookupError(result);
  const { view } = result;
  // The token names its request (`rid`) and says whether it is end-to-end (`e2e`): decide checks both.
  const approvalToken = await signToken(
    env,
    "approval",
    { uc: userCode, rid: view.requestId, ek: view.encryptionKey, e2e: view.publicKey !== null },
    view.expiresAt,
  );
  return json(
    { approval_token: approvalToken, request: { ...requestJson(view, "link_token" in body), passkey_required: view.passkeyRequired } },
    200,
    session.setCookie ? { "Set-Cookie": session.setCookie } : {},
  );
}

/**
 * `o•••@example.com`: enough for an operator to recognise their own account, too little to harvest
 * an address from a forwarded link.
 */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf("@");
  if (at <= 0) return "•••";
  return `${[...email.slice(0, at)][0]}•••${email.slice(at)}`;
}

function requestJson(view: RequestView, viaLink: boolean) {
  return {
    agent: view.agent,
    account_id: view.accountId,
    // Whose account this is, so a link forwarded from another account on this deployment shows it.
    account: { id: view.accountId, name: view.accountName, operator_email: maskEmail(view.operatorEmail) },
    description: view.description,
    vault_key: view.vaultKey,
    expires_at: new Date(view.expiresAt).toISOString(),
    ...(view.bindingMessage !== null ? { binding_message: view.bindingMessage } : {}),
    ...(view.publicKey ? { public_key: view.publicKey } : {}),
    encryption_key: view.encryptionKey,
    user_code: viaLink || view.protocol === "ciba" ? null : formatUserCode(view.userCode),
    // Later approvers sign the stored credential's digest instead of typing one (README, "Approval policies (N-of-M)").
    ...approvalsJson(view.approvals),
  } satisfies ApprovalRequestBody;
}

/**
 * An unknown code and a wrong email get one answer, byte for byte, so a caller cannot tell a live
 * code from a dead one without spending one of its failed attempts (README, "Contract notes":
 * a separate 403 for a wrong email would be that tell, so it is folded into this 404).
 */
const noMatch = () =>
  new HttpError(404, "not_found", "No pending request matches that code and email, or the link has expired. Attempts are limited.");

function lookupError(result: Exclude<LookupResult, { reason: "ok" }>): HttpError {
  switch (result.reason) {
    case "not_found":
    case "wrong_email":
      return noMatch();
    case "locked":
      return new HttpError(403, "access_denied", "This code is locked after too many failed attempts.");
    case "already_claimed":
      return new HttpError(409, "already_claimed", "This request is already open in another browser.");
  }
}

/**
 * The request an approval token names, for a browser holding a session: the token's request and
 * user code, its encryption key and end-to-end flag (signed by the look-up).
 */
async function targetOf(request: Request, env: Env, approvalToken: string): Promise<DecisionTarget> {
  const invalidToken = new HttpError(403, "invalid_token", "This approval is no longer valid: it was used or it expired.");
  const verified = await verifyToken(env, "approval", approvalToken);
  const sessionHash = await existingSession(request);
  if (verified.reason !== "ok" || !sessionHash) throw invalidToken;
  const userCode = stringClaim(verified.claims, "uc");
  const requestId = stringClaim(verified.claims, "rid");
  const encryptionKey = verified.claims.ek as JWK | undefined;
  if (!userCode || !requestId || !encryptionKey) throw invalidToken;
  return { userCode, requestId, sessionHash, encryptionKey, endToEnd: verified.claims.e2e === true };
}

/** A passkey challenge for one decision (README, "Operators and passkeys"). */
export async function challenge(request: IRequest, env: Env): Promise<Response> {
  const body = await readJson(request, challengeSchema, MAX_LOOKUP_BODY);
  return issueDecisionChallenge(env, request, await targetOf(request, env, body.approval_token), body);
}

/** The operator's explicit decision (a GET never decides anything), signed by a passkey where the account has one. */
export async function decide(request: IRequest, env: Env): Promise<Response> {
  const body = await readJson(request, decideSchema, MAX_DECIDE_BODY);
  return decideRequest(env, request, await targetOf(request, env, body.approval_token), body);
}
