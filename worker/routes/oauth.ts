/**
 * The OAuth surface for standard client libraries: RFC 8414 metadata, the RFC 8628 device
 * authorization and token endpoints (client_id = agent_id, client_secret = api_key).
 */
import type { IRequest } from "itty-router";
import type { JWK } from "jose";
import { agentFromClientAuth, requireAgent } from "../auth";
import { baseUrl } from "../config";
import { deviceAuthorizationResponse } from "../device-response";
import { DPOP_ALGORITHMS } from "../../core/dpop";
import { dpopBinding, dpopProof } from "../dpop-header";
import { HttpError, badRequest, errorResponse } from "../errors";
import { actorOf, json, parseWith, readForm } from "../http";
import { issueRequest } from "../issue-request";
import { pollRequest } from "../poll-request";
import { isUsablePublicKey } from "../request-keys";
import { descriptionSchema, dpopJktSchema, publicJwkSchema, vaultKeySchema } from "../schemas";
import type { TokenBody } from "../../core/wire";

export const MAX_FORM_BODY = 8 * 1024;
export const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
export const CIBA_GRANT = "urn:openid:params:grant-type:ciba";
const CREDENTIAL_TOKEN_TYPE = "urn:keyferry:params:oauth:token-type:credential";

/** RFC 8414 §2; the issuer is the public origin, so `discovery()` finds itself. */
export function metadata(request: IRequest, env: Env): Response {
  const issuer = baseUrl(request, env);
  return json({
    issuer,
    device_authorization_endpoint: `${issuer}/oauth/device_authorization`,
    token_endpoint: `${issuer}/oauth/token`,
    backchannel_authentication_endpoint: `${issuer}/oauth/bc-authorize`,
    grant_types_supported: [DEVICE_CODE_GRANT, CIBA_GRANT],
    token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
    backchannel_token_delivery_modes_supported: ["poll", "ping"],
    backchannel_user_code_parameter_supported: false,
    // RFC 9449 §5.1: requests may be bound to a DPoP key (README, "Contract notes": DPoP).
    dpop_signing_alg_values_supported: DPOP_ALGORITHMS,
    response_types_supported: [],
    service_documentation: `${issuer}/approve`,
  });
}

/** A form parameter that carries JSON (the `public_key` extension parameter). */
async function publicKeyParameter(value: string | undefined): Promise<JWK | null> {
  if (value === undefined || value === "") return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw badRequest("public_key: must be a JWK as a JSON string");
  }
  const jwk = parseWith(publicJwkSchema, parsed);
  if (!(await isUsablePublicKey(jwk))) throw badRequest("public_key: is not a valid public key");
  return jwk;
}

/**
 * The extension parameters both OAuth issuance endpoints take: `description`, `vault_key`,
 * `public_key`, and the DPoP binding (`dpop_jkt`, or a `DPoP` proof header: RFC 9449 §10).
 */
export async function credentialParameters(
  form: Record<string, string>,
  request: Request,
  env: Env,
): Promise<{ description: string; vaultKey: string; publicKey: JWK | null; dpopJkt: string | null }> {
  const description = parseWith(descriptionSchema.optional(), form.description);
  if (description === undefined) throw badRequest("description: is required");
  const vaultKey = parseWith(vaultKeySchema.optional(), form.vault_key);
  if (vaultKey === undefined) throw badRequest("vault_key: is required");
  const dpopJkt = form.dpop_jkt === undefined ? undefined : parseWith(dpopJktSchema.optional(), form.dpop_jkt);
  return { description, vaultKey, publicKey: await publicKeyParameter(form.public_key), dpopJkt: await dpopBinding(request, env, dpopJkt) };
}

/** RFC 8628 §3.1, with the extension parameters `description`, `vault_key` and `public_key`. */
export async function deviceAuthorization(request: IRequest, env: Env): Promise<Response> {
  const form = await readForm(request, MAX_FORM_BODY);
  const credentials = await agentFromClientAuth(request, env, form);
  const issued = await issueRequest(env, credentials, { ...(await credentialParameters(form, request, env)), protocol: "device", handle: "device_code" });
  const origin = baseUrl(request, env);
  return json(deviceAuthorizationResponse(issued, origin));
}

function grantHandle(form: Record<string, string>): ["device_code" | "auth_req_id", string] {
  switch (form.grant_type) {
    case DEVICE_CODE_GRANT:
      if (!form.device_code) throw badRequest("device_code: is required");
      return ["device_code", form.device_code];
    case CIBA_GRANT:
      if (!form.auth_req_id) throw badRequest("auth_req_id: is required");
      return ["auth_req_id", form.auth_req_id];
    case undefined:
      throw badRequest("grant_type: is required");
    default:
      throw new HttpError(400, "unsupported_grant_type", "Supported grants: the device code grant and CIBA.");
  }
}

/** RFC 8628 §3.4 and CIBA Core §10.1: the client must be the agent that made the request. */
export async function token(request: Request, env: Env): Promise<Response> {
  const form = await readForm(request, MAX_FORM_BODY);
  const credentials = await agentFromClientAuth(request, env, form);
  const client = { agentId: credentials.agentId, keyHash: credentials.keyHash, apiKey: credentials.apiKey, basic: credentials.basic };
  const [kind, handle] = grantHandle(form);
  const proof = await dpopProof(request, env);
  const actor = actorOf(request);
  const answer = await pollRequest(env, kind, handle, client, { proof, actor });
  if ("error" in answer) {
    // A request object vouches for its own agent's key before it answers pending, slow_down or
    // denied. Where no request could (unknown, expired or another agent's code), confirm the client
    // with its account, so a bad client hears invalid_client rather than a grant error.
    if (answer.error.code === "invalid_grant" || answer.error.code === "expired_token") await requireAgent(env, credentials);
    // Thrown, not returned, so its internal reason reaches the log (worker/errors.ts).
    if (answer.error instanceof HttpError) throw answer.error;
    return errorResponse(answer.error);
  }
  const { delivered } = answer;
  return json({
    access_token: "credentialJwe" in delivered ? delivered.credentialJwe : delivered.credentialValue,
    // RFC 9449 §5: a bound request's credential is delivered as a DPoP-bound token.
    token_type: delivered.bound ? "DPoP" : "Bearer",
    issued_token_type: CREDENTIAL_TOKEN_TYPE,
    vault_key: delivered.vaultKey,
  } satisfies TokenBody);
}
