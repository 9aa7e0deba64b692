/**
 * The console's pending requests (README, "Console"): the list, its live socket, and each request's
 * passkey challenge and decision. A request is found through the operator's own account object, so
 * an operator can only ever reach the requests of their account: another account's request ID is
 * the same 404 as an unknown one.
 */
import type { IRequest } from "itty-router";
import { keyFingerprint } from "../../core/fingerprint";
import { CONSOLE_OPERATOR, type ConsoleRequest } from "../../durable-objects/account/console-feed";
import { existing } from "../account-admin";
import { approvalsJson } from "../approvals-json";
import { consoleReader, consoleWriter, type ConsoleSession } from "../console-access";
import { requireSameOrigin } from "../console/session";
import { HttpError, notFound } from "../errors";
import { json, readJson } from "../http";
import { isRequestId } from "../ids";
import { decideRequest, issueDecisionChallenge } from "../passkey-decision";
import { consoleChallengeSchema, consoleDecideSchema, decideSaved, issueSavedChallenge, type SavedApprovalTarget } from "../saved-approval";
import { accountStub } from "../stubs";
import type { ConsoleRequestBody, ConsoleRequestsBody } from "../../core/wire";

/** As /v1/approvals/decide: a 16 KiB value JSON-escaped at worst, or a 32 KiB JWE, with room to spare. */
const MAX_DECIDE_BODY = 128 * 1024;
const MAX_CHALLENGE_BODY = 4 * 1024;

export async function listRequests(request: IRequest, env: Env): Promise<Response> {
  const session = await consoleReader(request, env);
  const { requests } = existing(await accountStub(env, session.accountId).consoleRequests());
  return json({ requests: await Promise.all(requests.map(requestJson)) } satisfies ConsoleRequestsBody);
}

async function requestJson(view: ConsoleRequest): Promise<ConsoleRequestBody> {
  return {
    request_id: view.requestId,
    agent: view.agent,
    description: view.description,
    vault_key: view.vaultKey,
    expires_at: new Date(view.expiresAt).toISOString(),
    ...(view.bindingMessage !== null ? { binding_message: view.bindingMessage } : {}),
    // As on the approval page: the fingerprint the agent printed, and the keys the browser encrypts to.
    ...(view.publicKey ? { fingerprint: await keyFingerprint(view.publicKey), public_key: view.publicKey } : {}),
    encryption_key: view.encryptionKey,
    ...approvalsJson(view.approvals),
  };
}

/**
 * The live list: a WebSocket held by the account object (durable-objects/account/console-feed.ts)
 * that says `requests_changed`. A browser sends `Origin` on every WebSocket handshake and the
 * cookie is SameSite=Strict; the Origin is still checked, against cross-site WebSocket hijacking.
 */
export async function liveRequests(request: IRequest, env: Env): Promise<Response> {
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    throw new HttpError(426, "invalid_request", "Open this path as a WebSocket.", { Upgrade: "websocket" });
  }
  requireSameOrigin(request, env);
  const session = await consoleReader(request, env);
  return accountStub(env, session.accountId).fetch(
    new Request("https://account.internal/console", { headers: { Upgrade: "websocket", [CONSOLE_OPERATOR]: session.operator.operatorId } }),
  );
}

export async function challenge(request: IRequest, env: Env): Promise<Response> {
  const session = await consoleWriter(request, env);
  const body = await readJson(request, consoleChallengeSchema, MAX_CHALLENGE_BODY);
  const pending = await pendingRequest(request, env, session);
  if (body.saved !== undefined) return issueSavedChallenge(env, request, session, pending, { ...body, saved: body.saved });
  return issueDecisionChallenge(env, request, pending.target, body);
}

export async function decide(request: IRequest, env: Env): Promise<Response> {
  const session = await consoleWriter(request, env);
  const body = await readJson(request, consoleDecideSchema, MAX_DECIDE_BODY);
  const pending = await pendingRequest(request, env, session);
  if (body.saved !== undefined) return decideSaved(env, request, session, pending, { ...body, saved: body.saved });
  return decideRequest(env, request, pending.target, body);
}

/** The operator's own account's pending request, as the passkey decision addresses it. */
async function pendingRequest(request: IRequest, env: Env, session: ConsoleSession): Promise<SavedApprovalTarget> {
  const requestId = request.params.request_id ?? "";
  const noSuchRequest = notFound("No pending request of this account has that ID.");
  if (!isRequestId(requestId)) throw noSuchRequest;
  const found = await accountStub(env, session.accountId).consoleRequest(requestId);
  if (found.reason !== "found") throw noSuchRequest;
  const { request: view, userCode } = found;
  // No claim: the console's session proves who the operator is, and the passkey decides.
  return { target: { userCode, requestId, sessionHash: null, encryptionKey: view.encryptionKey, endToEnd: view.publicKey !== null }, vaultKey: view.vaultKey };
}
