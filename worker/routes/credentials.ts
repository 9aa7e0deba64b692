/** The agent API: `/v1/credentials/request` and `/v1/credentials/poll` (CONTRACT.md). */
import type { IRequest } from "itty-router";
import { agentFromBearer } from "../auth";
import { baseUrl } from "../config";
import { deviceAuthorizationResponse, pushResponse } from "../device-response";
import { badRequest, errorResponse } from "../errors";
import { json, readJson, readJsonValue } from "../http";
import { issueRequest } from "../issue-request";
import { notifyOperator } from "../notify/notify-operator";
import { pollRequest } from "../poll-request";
import { isUsablePublicKey } from "../request-keys";
import { credentialRequestSchema } from "../schemas";
import type { PollSuccessBody } from "../../core/wire";

const MAX_REQUEST_BODY = 8 * 1024;

/**
 * `hint: "code"` (default) is the device flow: the operator types the user code. `hint: "push"`
 * takes the CIBA path: no code is shown at all, the operator approves from the notified link.
 */
export async function requestCredential(request: IRequest, env: Env, ctx: ExecutionContext): Promise<Response> {
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
  });
  const origin = baseUrl(request, env);
  ctx.waitUntil(notifyOperator(env, origin, issued));
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
  const answer = await pollRequest(env, "device_code", deviceCode, null);
  if ("error" in answer) return errorResponse(answer.error);
  const { delivered } = answer;
  return json(
    "credentialJwe" in delivered
      ? ({ vault_key: delivered.vaultKey, description: delivered.description, credential_jwe: delivered.credentialJwe } satisfies PollSuccessBody)
      : ({ vault_key: delivered.vaultKey, description: delivered.description, credential_value: delivered.credentialValue } satisfies PollSuccessBody),
  );
}
