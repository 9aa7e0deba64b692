import { DEFAULT_INTERVAL_SECONDS, requestTtlSeconds as configuredTtlSeconds } from "../core/limits";
import { HttpError } from "./errors";

/** `REQUEST_TTL_SECONDS` (core/limits.ts: the account object reads it too, to know how far back a live request can be). */
export const requestTtlSeconds = (env: Env): number => configuredTtlSeconds(env.REQUEST_TTL_SECONDS);

/**
 * `POLL_INTERVAL_SECONDS`: default 5. Whole seconds in production; a fraction (0.1 at least) is
 * honoured by the server's slow_down check while clients are told the next whole second
 * (`advertisedInterval`), so the bench can poll a pool faster without any poll being early.
 */
export function pollIntervalSeconds(env: Env): number {
  const value = Number(env.POLL_INTERVAL_SECONDS ?? "");
  return Number.isFinite(value) && value >= MIN_INTERVAL_SECONDS ? value : DEFAULT_INTERVAL_SECONDS;
}

const MIN_INTERVAL_SECONDS = 0.1;

/** RFC 8628 §3.2's `interval` as clients read it (whole seconds): never shorter than the server's own. */
export const advertisedInterval = (seconds: number): number => Math.ceil(seconds);

/** The public origin: `PUBLIC_BASE_URL` when set, else the request's own origin. */
export function baseUrl(request: Request, env: Env): string {
  const configured = env.PUBLIC_BASE_URL?.trim();
  return (configured ? configured : new URL(request.url).origin).replace(/\/+$/, "");
}

export const allowHttpWebhooks = (env: Env) => env.ALLOW_HTTP_WEBHOOKS === "true";

/** A deployment without its secrets is a server fault, said once in the log, never on the wire. */
export function requireSecret(env: Env, name: "TOKEN_SIGNING_KEY"): string {
  const value = env[name];
  if (!value) {
    console.error(`${name} is not set: run \`wrangler secret put ${name}\` (or \`npm run dev\` locally)`);
    throw new HttpError(500, "server_error", "The server is not configured.");
  }
  return value;
}

/** The shortest ADMIN_TOKEN served: 32 characters, as long as `npm run dev`'s 24 random bytes in base64url. */
export const MIN_ADMIN_TOKEN_LENGTH = 32;

/**
 * ADMIN_TOKEN, if it is long enough to resist guessing. A short or missing one closes the admin API
 * (503, the reason in the log) rather than serving it: no token a caller sends can fix a weak
 * configuration, so 401 would mislead, and the agent and approval APIs keep working.
 */
export function adminToken(env: Env): string {
  const value = env.ADMIN_TOKEN;
  if (!value || value.length < MIN_ADMIN_TOKEN_LENGTH) {
    throw new HttpError(
      503,
      "server_error",
      "The admin API is not configured.",
      {},
      `ADMIN_TOKEN is ${value ? "shorter than" : "not set; it needs"} ${MIN_ADMIN_TOKEN_LENGTH} characters: run \`wrangler secret put ADMIN_TOKEN\` with a long random value (\`npm run dev\` makes one locally)`,
    );
  }
  return value;
}
