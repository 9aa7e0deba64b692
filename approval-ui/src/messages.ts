import type { ApiError } from "./api";

/** Operator-facing sentences for each failure of the look-up (README, "Contract notes" lists the codes beyond RFC 6749). */
export function lookupMessage(f: ApiError, viaLink: boolean): string {
  const common = commonMessage(f);
  if (common) return common;
  if (viaLink && (f.status === 401 || f.status === 403 || f.status === 404 || f.error === "invalid_token")) {
    return "This approval link no longer works: it was already used, the request was decided, or it expired. Ask the agent to make a new request if you still need to.";
  }
  switch (f.error) {
    case "access_denied":
      return "The code and email do not match a request you can approve. Check both and try again. Attempts are limited: after 5 wrong tries the request is cancelled for good.";
    case "not_found":
      // The server answers an unknown code and a wrong email alike (README, "Contract notes").
      return "No open request has this code with this email. Check both as the agent printed them and as your account has it; the request may also have expired or already been decided. Attempts are limited: after 5 wrong tries the request is cancelled for good.";
    case "already_claimed":
      return "This request was already opened in another browser. Finish it there. If that was not you, do not approve it anywhere and ask the agent to make a new request.";
    case "invalid_request":
      return "The code or email is not in the expected form. Check both and try again.";
    default:
      return fallback(f);
  }
}

/** Operator-facing sentences for each failure of the decision. */
export function decideMessage(f: ApiError): string {
  const common = commonMessage(f);
  if (common) return common;
  switch (f.error) {
    case "invalid_token":
      return "This request was already decided or has expired, so nothing was changed. Ask the agent to make a new request if you still need to.";
    case "passkey_cancelled":
      return "Your passkey did not sign the decision (cancelled, or no passkey of this account on this device). Nothing was decided; try again.";
    case "passkey_required":
      return f.status === 403
        ? "This deployment requires a passkey for every decision, and no operator of this account has one yet. Ask the admin to invite you."
        : "This account's decisions must be signed with a passkey. Reload the page and try again.";
    case "access_denied":
      return "Your passkey's signature was not accepted for this decision (a passkey of another account, or one that was removed). Nothing was decided.";
    case "already_approved":
      return "You have already approved this request. It now waits for another operator's approval; nothing more is needed from you.";
    case "already_claimed":
      return "This request belongs to another browser session. Open it again from the start in the browser you used first.";
    case "invalid_request":
      return f.description ? `The server refused this: ${f.description}` : "The server refused this request as malformed.";
    default:
      return fallback(f);
  }
}

function commonMessage(f: ApiError): string | null {
  if (f.error === "network_error") return "Could not reach Keyferry. Check your connection and try again.";
  if (f.error === "bad_response") return "Keyferry answered in a way this page does not understand. Reload the page and try again.";
  if (f.status === 429) {
    const wait = f.retryAfter !== null && f.retryAfter > 0 ? `${f.retryAfter} second${f.retryAfter === 1 ? "" : "s"}` : "a minute";
    return `Too many attempts from your network. Wait ${wait}, then try again.`;
  }
  if (f.status === 413) return "The credential is too large to send.";
  return null;
}

function fallback(f: ApiError): string {
  if (f.status >= 500) return "Something went wrong on Keyferry's side. Wait a moment and try again.";
  return f.description ? `Keyferry refused this: ${f.description}` : "Keyferry refused this request. Reload the page and try again.";
}
