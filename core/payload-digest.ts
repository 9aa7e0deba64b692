/**
 * The digest a decision's passkey signs (README, "Operators and passkeys"): SHA-256 of the exact
 * credential string sent (or, under an approval policy, stored), as base64url (RFC 4648 §5). The
 * approval page, the console, the worker and the request object must compute it alike.
 */
import { base64url } from "jose";

export async function payloadDigest(text: string): Promise<string> {
  return base64url.encode(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))));
}
