/**
 * Tokens the worker signs and alone can verify (HS256 under TOKEN_SIGNING_KEY). Each kind has its
 * own `typ` and audience so one can never stand in for another (RFC 8725 §3.11), and every
 * verification pins algorithm, type, issuer, audience and maximum age (STYLE.md §8).
 */
import { SignJWT, errors, jwtVerify, type JWTPayload } from "jose";
import { hmacKey } from "./signing-keys";

const ISSUER = "keyferry";
const MAX_AGE = "1d";

/** Tokens for the operator's browser; the agent's polling handles are in handles.ts. */
export type TokenKind = "approval" | "approval_link";

const PROFILES: Record<TokenKind, { typ: string; audience: string }> = {
  approval: { typ: "kf-approval+jwt", audience: "urn:keyferry:approval" },
  approval_link: { typ: "kf-approval-link+jwt", audience: "urn:keyferry:approval-link" },
};

export async function signToken(env: Env, kind: TokenKind, claims: JWTPayload, expiresAtMs: number): Promise<string> {
  const { typ, audience } = PROFILES[kind];
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ })
    .setIssuer(ISSUER)
    .setAudience(audience)
    .setIssuedAt()
    // Rounded up: a token must never expire before its request does; the object checks the millisecond.
    .setExpirationTime(Math.ceil(expiresAtMs / 1000))
    .sign(await hmacKey(env, "token"));
}

export type VerifiedToken = { reason: "ok"; claims: JWTPayload } | { reason: "expired"; claims: JWTPayload } | { reason: "invalid" };

/** `expired` only for a token whose signature is good: a forged one is `invalid` whatever it says. */
export async function verifyToken(env: Env, kind: TokenKind, token: string): Promise<VerifiedToken> {
  const { typ, audience } = PROFILES[kind];
  if (token.length > 4096) return { reason: "invalid" };
  try {
    const { payload } = await jwtVerify(token, await hmacKey(env, "token"), {
      algorithms: ["HS256"],
      typ,
      issuer: ISSUER,
      audience,
      maxTokenAge: MAX_AGE,
      requiredClaims: ["exp", "iat"],
    });
    return { reason: "ok", claims: payload };
  } catch (error) {
    if (error instanceof errors.JWTExpired) return { reason: "expired", claims: error.payload };
    return { reason: "invalid" };
  }
}

export const stringClaim = (claims: JWTPayload, name: string): string | null => {
  const value = claims[name];
  return typeof value === "string" ? value : null;
};
