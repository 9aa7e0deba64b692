/**
 * The approval session cookie: the first successful look-up claims a request for that browser
 * (RFC 8628 §5.5). HttpOnly and SameSite=Strict, so neither page script nor another site can use it;
 * `__Host-` (RFC 6265bis §4.1.3.2), so it is Secure, Path=/ and bound to this host: no sibling
 * subdomain can set or shadow it. Browsers accept Secure cookies from http://localhost and
 * http://127.0.0.1, which they treat as secure contexts, so local development keeps working.
 */
import { randomToken, sha256 } from "./hashing";

const COOKIE = "__Host-kf_approval";
const SESSION_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export interface ApprovalSession {
  hash: string;
  /** Set when the browser had no session yet. */
  setCookie: string | null;
}

function sessionFromCookie(request: Request): string | null {
  for (const part of (request.headers.get("Cookie") ?? "").split(";")) {
    const [name, ...rest] = part.trim().split("=");
    const value = rest.join("=");
    if (name === COOKIE && SESSION_PATTERN.test(value)) return value;
  }
  return null;
}

/** The browser's session, or null when it has none (decide requires one). */
export async function existingSession(request: Request): Promise<string | null> {
  const id = sessionFromCookie(request);
  return id ? sha256(id) : null;
}

export async function sessionFor(request: Request): Promise<ApprovalSession> {
  const existing = sessionFromCookie(request);
  if (existing) return { hash: await sha256(existing), setCookie: null };
  const id = randomToken(32);
  return { hash: await sha256(id), setCookie: `${COOKIE}=${id}; Path=/; Secure; HttpOnly; SameSite=Strict` };
}
