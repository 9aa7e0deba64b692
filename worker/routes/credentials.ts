/**
 * The agent API: `/v1/credentials/request`, `/v1/credentials/poll`, `/v1/credentials/ack` and
 * `/v1/credentials/wait` (README, "A handoff in five requests" and "Contract notes" and "Nothing
 * lost to a dropped response").
 */
import type { IRequest } from "itty-router";
import { agentFromBearer } from "../auth";
import { baseUrl } from "../config";
import { deviceAuthorizationResponse, pushResponse } from "../device-response";
import { acknowledgeDelivery } from "../acknowledge-delivery";
import { MAX_WAITS_PER_REQUEST, WAIT_RETRY_AFTER_SECONDS } from "../../core/limits";
import { WAIT_REFUSAL, waitHeaders } from "../../durable-objects/request/wait-channel";
import { dpopBinding, dpopProof, invalidDpopProof } from "../dpop-header";
import { HttpError, badRequest, errorResponse } from "../errors";
import { verifyHandle, type HandleKind } from "../handles";
import { actorOf, json, readJson, readJsonValue } from "../http";
import { issueRequest } from "../issue-request";
import { pollRequest, pollWireError } from "../poll-request";
import { isUsablePublicKey } from "../request-keys";
import { acknowledgementSchema, credentialRequestSchema } from "../schemas";
import { RETURN_CHANNEL_PROTOCOL, WAIT_AUTH_REQ_ID_PREFIX, WAIT_DEVICE_CODE_PREFIX, WAIT_DPOP_PREFIX, type PollSuccessBody } from "../../core/wire";
import { requestStub } from "../stubs";

const MAX_REQUEST_BODY = 8 * 1024;

/**
 * `hint: "code"` (default) is the device flow: the operator types the user code. `hint: "push"`
 * takes the CIBA path: no code is shown at all, the operator approves from the notified link.
 */
export async function requestCredential(request: IRequest, env: Env): Promise<Response> {
  const credentials = await agentFromBearer(request, env);
  const body = await readJson(request, credentialRequestSchema, MAX_REQUEST_BODY);
  if (body.public_key && !(await isUsablePublicKey(body.public_key))) throw badRequest("public_key: is not a valid public key");
  const push = body.hint === "push";
  const issued = await issueRequest(env, credentials, {
    description: body.description,
    vaultKey: body.vault_key,
    publicKey: body.public_key ?? null,
    protocol: push ? "ciba" : "device",
    handle: "device_code",
    dpopJkt: await dpopBinding(request, env, body.dpop_jkt),
  });
  const origin = baseUrl(request, env);
  return json(push ? pushResponse(issued) : deviceAuthorizationResponse(issued, origin));
}

/**
 * The hot path: an agent polls every few seconds. Its body is one ASCII string,
 * read leniently and checked here without zod: both were measurable shares of a poll in workerd
 * (bench/README.md); a body that is not UTF-8 can only make the code unknown (invalid_grant).
 */
export async function pollCredential(request: Request, env: Env): Promise<Response> {
  const body = await readJsonValue(request, MAX_REQUEST_BODY, "lenient");
  const deviceCode = typeof body === "object" && body !== null && "device_code" in body ? body.device_code : undefined;
  if (typeof deviceCode !== "string") throw badRequest("device_code: must be a string");
  const proof = await dpopProof(request, env);
  const actor = actorOf(request);
  const answer = await pollRequest(env, "device_code", deviceCode, null, { proof, actor });
  if ("error" in answer) return errorResponse(answer.error);
  const { delivered } = answer;
  return json(
    "credentialJwe" in delivered
      ? ({ vault_key: delivered.vaultKey, description: delivered.description, credential_jwe: delivered.credentialJwe } satisfies PollSuccessBody)
      : ({ vault_key: delivered.vaultKey, description: delivered.description, credential_value: delivered.credentialValue } satisfies PollSuccessBody),
  );
}

/** The agent stored what a DPoP-bound request delivered: its kept answer goes now (204). */
export async function acknowledgeCredential(request: Request, env: Env): Promise<Response> {
  const body = await readJson(request, acknowledgementSchema, MAX_REQUEST_BODY);
  return typeof body.auth_req_id === "string"
    ? acknowledgeDelivery(request, env, "auth_req_id", body.auth_req_id)
    : acknowledgeDelivery(request, env, "device_code", body.device_code);
}

const HANDLE_PROTOCOLS: ReadonlyArray<[string, HandleKind]> = [
  [WAIT_DEVICE_CODE_PREFIX, "device_code"],
  [WAIT_AUTH_REQ_ID_PREFIX, "auth_req_id"],
];

/**
 * The return channel (README, "Return channel"): a WebSocket on which the request's object
 * announces the decision or the expiry. The handle travels as a subprotocol, never in the URL; so
 * does a bound request's DPoP proof (RFC 9449 §4, for `GET` on this URL) where the client cannot
 * send it as the `DPoP` header. Both are checked here before any object is touched, so a forged,
 * malformed or expired one is refused before the upgrade with the poll's 400 body; the object
 * refuses by the poll's rules the same way, and a fifth socket on one request with 429.
 */
export async function waitForDecision(request: IRequest, env: Env): Promise<Response> {
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
    throw new HttpError(426, "invalid_request", "This endpoint is a WebSocket: send Upgrade: websocket.", { Upgrade: "websocket" });
  }
  const offered = (request.headers.get("Sec-WebSocket-Protocol") ?? "").split(",").map((p) => p.trim());
  if (!offered.includes(RETURN_CHANNEL_PROTOCOL)) throw badRequest(`Sec-WebSocket-Protocol: must offer ${RETURN_CHANNEL_PROTOCOL}`);
  const handles = offered.flatMap((p) => HANDLE_PROTOCOLS.filter(([prefix]) => p.startsWith(prefix)).map(([prefix, kind]) => [kind, p.slice(prefix.length)] as const));
  const [named] = handles;
  if (!named || handles.length > 1) {
    throw badRequest(`Sec-WebSocket-Protocol: must name one ${WAIT_DEVICE_CODE_PREFIX}<device_code> or ${WAIT_AUTH_REQ_ID_PREFIX}<auth_req_id>`);
  }
  const proofs = offered.filter((p) => p.startsWith(WAIT_DPOP_PREFIX)).map((p) => p.slice(WAIT_DPOP_PREFIX.length));
  const header = request.headers.get("DPoP");
  if (header !== null) proofs.push(header);
  // One proof only (RFC 9449 §4.3 point 1), whichever way it came.
  if (proofs.length > 1) throw invalidDpopProof();
  const [kind, handle] = named;
  // An auth_req_id's waiter proves it is the agent where it can send headers (CIBA Core §7.1).
  const client = kind === "auth_req_id" && request.headers.has("Authorization") ? await agentFromBearer(request, env) : null;
  const verified = await verifyHandle(env, kind, handle);
  if (!verified) return errorResponse(pollWireError({ reason: "invalid_grant" }));
  if (Date.now() >= verified.expiresAt) return errorResponse(pollWireError({ reason: "expired_token" }));
  const proof = await dpopProof(request, env, proofs[0] ?? null);
  const headers = new Headers(request.headers);
  // The object needs what was checked, not the secrets it was checked with.
  headers.delete("Authorization");
  headers.delete("DPoP");
  headers.set("Sec-WebSocket-Protocol", RETURN_CHANNEL_PROTOCOL);
  waitHeaders(headers, { tag: verified.tag, client: client && { agentId: client.agentId, keyHash: client.keyHash }, proof, actor: actorOf(request) });
  const answer = await requestStub(env, verified.userCode).fetch(new Request(request.url, { headers }));
  if (answer.status === 101) return answer;
  const reason = answer.headers.get(WAIT_REFUSAL);
  switch (reason) {
    case "too_many_requests":
      return errorResponse({
        status: 429,
        code: "too_many_requests",
        description: `At most ${MAX_WAITS_PER_REQUEST} return-channel sockets per request: poll, or wait for one to close.`,
        headers: { "Retry-After": String(WAIT_RETRY_AFTER_SECONDS) },
      });
    case "expired_token":
    case "access_denied":
    case "invalid_client":
    case "invalid_dpop_proof":
    case "invalid_grant":
      return errorResponse(pollWireError({ reason }));
    default:
      throw new Error(`the request object answered a wait with ${answer.status}`);
  }
}
