/**
 * OpenID CIBA Core 1.0 backchannel authentication (§7): the agent asks, the operator is notified
 * and approves from a signed link; no code is typed. Poll mode polls `/oauth/token` with the CIBA
 * grant; ping mode (§10.2) also gets a POST to the agent's registered notification endpoint.
 */
import type { IRequest } from "itty-router";
import { agentFromClientAuth, requireAgent } from "../auth";
import { HttpError, badRequest } from "../errors";
import { advertisedInterval } from "../config";
import { json, readForm } from "../http";
import { issueRequest } from "../issue-request";
import { MAX_FORM_BODY, credentialParameters } from "./oauth";
import type { BackchannelAuthenticationBody } from "../../core/wire";

/** Short and plain, so it reads the same in an email, a chat message and the page (CIBA Core §7.1). */
const BINDING_MESSAGE = /^[\p{L}\p{N} .,:;!?@#%&*()'+=_/-]{1,64}$/u;

function bindingMessage(value: string | undefined): string | null {
  if (value === undefined || value === "") return null;
  if (!BINDING_MESSAGE.test(value)) {
    throw new HttpError(400, "invalid_binding_message", "binding_message must be 1-64 letters, digits, spaces or simple punctuation.");
  }
  return value;
}

function requestedExpiry(value: string | undefined): number | null {
  if (value === undefined || value === "") return null;
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1) throw badRequest("requested_expiry: must be a positive whole number of seconds");
  return Number(value);
}

export async function backchannelAuthorize(request: IRequest, env: Env): Promise<Response> {
  const form = await readForm(request, MAX_FORM_BODY);
  const credentials = await agentFromClientAuth(request, env, form);
  const parameters = await credentialParameters(form, request, env);
  if (form.id_token_hint !== undefined || form.login_hint_token !== undefined) {
    throw badRequest("Only login_hint identifies the operator here.");
  }
  const token = form.client_notification_token;
  if (token !== undefined && (token.length < 1 || token.length > 1024 || !/^[\x21-\x7e]+$/.test(token))) {
    throw badRequest("client_notification_token: must be 1-1024 visible ASCII characters");
  }
  const binding = bindingMessage(form.binding_message);
  const expiry = requestedExpiry(form.requested_expiry);
  // Checked before a slot is taken: a refused request holds nothing.
  const { operatorEmail, pingEndpoint } = await requireAgent(env, credentials);
  // §7.1: login_hint names the operator; it must be this account's.
  if (form.login_hint !== undefined && form.login_hint.trim().toLowerCase() !== operatorEmail.trim().toLowerCase()) {
    throw new HttpError(400, "unknown_user_id", "login_hint does not name this account's operator.");
  }
  if (pingEndpoint && token === undefined) {
    throw badRequest("client_notification_token: is required for a client registered in ping mode");
  }
  const issued = await issueRequest(env, credentials, {
    ...parameters,
    protocol: "ciba",
    handle: "auth_req_id",
    bindingMessage: binding,
    // Honoured up to the account's maximum, the configured request lifetime (issueRequest caps it).
    requestedExpirySeconds: expiry,
    ping: pingEndpoint && token ? { endpoint: pingEndpoint, token } : null,
  });
  return json({ auth_req_id: issued.handle, expires_in: Math.round((issued.expiresAt - Date.now()) / 1000), interval: advertisedInterval(issued.interval) } satisfies BackchannelAuthenticationBody);
}
