/**
 * Push to the operator's browsers (README, "Push to your phone"): the service's VAPID key for
 * `PushManager.subscribe`, and the operator's own subscriptions. A push endpoint follows the
 * webhook URL rules (https on 443/8443, no internal address), since the service POSTs to it.
 */
import type { IRequest } from "itty-router";
import { z } from "zod";
import { vapidFrom } from "../../durable-objects/account/notify/vapid";
import { allowHttpWebhooks } from "../config";
import { consoleReader, consoleWriter } from "../console-access";
import { HttpError } from "../errors";
import { json, noContent, readJson } from "../http";
import { isPushSubscriptionId, newPushSubscriptionId } from "../ids";
import { accountStub } from "../stubs";
import { isAllowedWebhookUrl } from "../webhook-url";

/** RFC 8291 §3.2: a 65-byte uncompressed P-256 point and a 16-byte secret, base64url (padding tolerated). */
const base64urlOf = (bytes: number) => z.string().regex(new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((bytes * 4) / 3)}}={0,2}$`));

/** `PushSubscription.toJSON()`. */
const subscriptionSchema = z.object({
  endpoint: z.string().max(2048),
  expirationTime: z.number().nullable().optional(),
  keys: z.object({ p256dh: base64urlOf(65), auth: base64urlOf(16) }),
});

const MAX_SUBSCRIPTION_BODY = 4 * 1024;

export async function pushKey(request: IRequest, env: Env): Promise<Response> {
  await consoleReader(request, env);
  const vapid = await vapidFrom(env);
  if (!vapid) throw new HttpError(404, "not_found", "Push is not set up on this service (VAPID_PRIVATE_KEY and VAPID_SUBJECT).");
  return json({ application_server_key: vapid.applicationServerKey });
}

export async function subscribe(request: IRequest, env: Env): Promise<Response> {
  const session = await consoleWriter(request, env);
  const body = await readJson(request, subscriptionSchema, MAX_SUBSCRIPTION_BODY);
  if (!isAllowedWebhookUrl(body.endpoint, allowHttpWebhooks(env))) {
    throw new HttpError(400, "invalid_request", "endpoint must be an https URL of a public push service.");
  }
  const record = { endpoint: body.endpoint, p256dh: body.keys.p256dh.replace(/=+$/, ""), auth: body.keys.auth.replace(/=+$/, "") };
  const id = await accountStub(env, session.accountId).addPushSubscription(session.operator.operatorId, record, newPushSubscriptionId());
  if (!id) throw new HttpError(409, "too_many_subscriptions", "This operator has the most push subscriptions allowed; remove one first.");
  return json({ subscription_id: id }, 201);
}

export async function unsubscribe(request: IRequest, env: Env): Promise<Response> {
  const session = await consoleWriter(request, env);
  const id = request.params.subscription_id ?? "";
  const removed = isPushSubscriptionId(id) && (await accountStub(env, session.accountId).removePushSubscription(session.operator.operatorId, id));
  if (!removed) throw new HttpError(404, "not_found", "No such push subscription of yours.");
  return noContent();
}
