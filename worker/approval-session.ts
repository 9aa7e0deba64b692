/**
 * The approval session cookie: the first successful look-up claims a request for that browser
 * (RFC 8628 §5.5). HttpOnly and SameSite=Strict, so neither page script nor another site can use it.
 */
import { randomToken, sha256 } from "./hashing";

const COOKIE = "kf_approval";
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
  const secure = new URL(request.url).protocol === "https:" ? "; Secure" : "";
  return { hash: await sha256(id), setCookie: `${COOKIE}=${id}; Path=/v1/approvals; HttpOnly; SameSite=Strict${secure}` };
}
