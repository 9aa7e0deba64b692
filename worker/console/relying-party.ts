/**
 * The WebAuthn relying party (WebAuthn L3 §5.1.3, §13.4.9): RP ID = the host of PUBLIC_BASE_URL and
 * the expected origin = its origin; without PUBLIC_BASE_URL, the request's own. Passkeys are bound to
 * the RP ID, so a phishing site on another host can neither create nor use them.
 */
import type { RelyingParty } from "../../core/webauthn";
import { baseUrl } from "../config";

export function relyingParty(request: Request, env: Env): RelyingParty {
  const origin = new URL(baseUrl(request, env)).origin;
  return { origin, rpId: new URL(origin).hostname };
}

export const RP_NAME = "Keyferry";
