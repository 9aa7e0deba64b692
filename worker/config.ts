import { DEFAULT_INTERVAL_SECONDS, DEFAULT_TTL_SECONDS, MIN_TTL_SECONDS } from "../core/limits";
import { HttpError } from "./errors";

/** `REQUEST_TTL_SECONDS`: default 600, any value from 5 up is honoured (CONTRACT.md). */
export function requestTtlSeconds(env: Env): number {
  const value = Number.parseInt(env.REQUEST_TTL_SECONDS ?? "", 10);
  return Number.isFinite(value) ? Math.max(MIN_TTL_SECONDS, value) : DEFAULT_TTL_SECONDS;
}

export function pollIntervalSeconds(env: Env): number {
  const value = Number.parseInt(env.POLL_INTERVAL_SECONDS ?? "", 10);
  return Number.isFinite(value) && value >= 1 ? value : DEFAULT_INTERVAL_SECONDS;
}

/** The public origin: `PUBLIC_BASE_URL` when set, else the request's own origin. */
export function baseUrl(request: Request, env: Env): string {
  const configured = env.PUBLIC_BASE_URL?.trim();
  return (configured ? configured : new URL(request.url).origin).replace(/\/+$/, "");
}

export const allowHttpWebhooks = (env: Env) => env.ALLOW_HTTP_WEBHOOKS === "true";

/** A deployment without its secrets is a server fault, said once in the log, never on the wire. */
export function requireSecret(env: Env, name: "ADMIN_TOKEN" | "TOKEN_SIGNING_KEY"): string {
  const value = env[name];
  if (!value) {
    console.error(`${name} is not set: run \`wrangler secret put ${name}\` (or \`npm run dev\` locally)`);
    throw new HttpError(500, "server_error", "The server is not configured.");
  }
  return value;
}
