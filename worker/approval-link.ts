/**
 * Every new request reaches its operator (DESIGN.md, anti-phishing): the worker signs the
 * one-click link, which only it can, and issuance hands it to the account, whose outbox
 * (durable-objects/account/notify/notifier.ts) stores the notice in the same step as the request's
 * slot, then emails the operator and posts the webhook event durably, retrying across restarts.
 */
import { signToken } from "./tokens";

let warnedNoBaseUrl = false;

/**
 * `${PUBLIC_BASE_URL}/approve#link=<token>`: the token rides in the fragment, which browsers never
 * send, so it stays out of server and proxy logs and `Referer` (README, "Notifications that survive outages"). The link is
 * never built from the request's Host header, which the caller controls (a forged Host would mail
 * the operator a link to the caller's own site): without PUBLIC_BASE_URL there is no link.
 */
export async function approvalUrl(env: Env, issued: { userCode: string; requestId: string; expiresAt: number }): Promise<string | null> {
  const base = env.PUBLIC_BASE_URL?.trim().replace(/\/+$/, "");
  if (!base) {
    if (!warnedNoBaseUrl) console.error("PUBLIC_BASE_URL is not set: notifications go out without an approval link");
    warnedNoBaseUrl = true;
    return null;
  }
  const token = await signToken(env, "approval_link", { uc: issued.userCode, rid: issued.requestId }, issued.expiresAt);
  return `${base}/approve#link=${token}`;
}
