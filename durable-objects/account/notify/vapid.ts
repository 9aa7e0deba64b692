/**
 * The service's VAPID identity (RFC 8292): one P-256 key pair, its private half the secret
 * `VAPID_PRIVATE_KEY` (a JWK `{"kty":"EC","crv":"P-256","x","y","d"}`, README, "Push to your phone"),
 * and `VAPID_SUBJECT` (`mailto:` or `https:`), which push services use to reach the sender.
 */
import { SignJWT, base64url, importJWK, type JWK } from "jose";

/** RFC 8292 §2: the JWT's `exp` must be no more than 24 hours ahead; 12 h leaves room for clock skew. */
const VAPID_JWT_LIFETIME_SECONDS = 12 * 60 * 60;

export interface Vapid {
  /** The uncompressed public point, base64url (RFC 8292 §3.2 `k`; `PushManager.subscribe`'s applicationServerKey). */
  applicationServerKey: string;
  subject: string;
  privateKey: CryptoKey;
}

/** The configured identity, or null when push is not set up (no key, or a key that is not a P-256 private JWK). */
export async function vapidFrom(env: { VAPID_PRIVATE_KEY?: string; VAPID_SUBJECT?: string }): Promise<Vapid | null> {
  const jwk = parsePrivateJwk(env.VAPID_PRIVATE_KEY);
  const subject = env.VAPID_SUBJECT?.trim() ?? "";
  if (!jwk || !/^(mailto:|https:\/\/)/.test(subject)) return null;
  try {
    const privateKey = await importJWK(jwk, "ES256");
    if (!(privateKey instanceof CryptoKey)) return null;
    const point = new Uint8Array(65);
    point[0] = 0x04;
    point.set(base64url.decode(jwk.x as string), 1);
    point.set(base64url.decode(jwk.y as string), 33);
    return { applicationServerKey: base64url.encode(point), subject, privateKey };
  } catch {
    return null;
  }
}

function parsePrivateJwk(text: string | undefined): JWK | null {
  if (!text) return null;
  try {
    const jwk = JSON.parse(text) as JWK;
    const ok = jwk.kty === "EC" && jwk.crv === "P-256" && [jwk.x, jwk.y, jwk.d].every((part) => typeof part === "string");
    return ok ? jwk : null;
  } catch {
    return null;
  }
}

/** `Authorization: vapid t=<JWT>, k=<key>` for one push resource (RFC 8292 §3): `aud` is its origin. */
export async function vapidAuthorization(vapid: Vapid, endpoint: string, nowMs: number): Promise<string> {
  const iat = Math.floor(nowMs / 1000);
  const jwt = await new SignJWT({ sub: vapid.subject })
    .setProtectedHeader({ alg: "ES256", typ: "JWT" })
    .setAudience(new URL(endpoint).origin)
    .setIssuedAt(iat)
    .setExpirationTime(iat + VAPID_JWT_LIFETIME_SECONDS)
    .sign(vapid.privateKey);
  return `vapid t=${jwt}, k=${vapid.applicationServerKey}`;
}
