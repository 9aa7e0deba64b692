import { base64url } from "jose";

/**
 * SHA-256 as base64url: how API keys and approval session ids are stored (never in the clear).
 * Polling handles are not hashed here: their request keeps the handle's MAC tag (worker/handles.ts).
 */
export async function sha256(input: string | Uint8Array): Promise<string> {
  const bytes = typeof input === "string" ? new TextEncoder().encode(input) : input;
  return base64url.encode(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

/** `bytes` random bytes as base64url: API key secrets and session ids (256 bits by default). */
export function randomToken(bytes = 32): string {
  return base64url.encode(crypto.getRandomValues(new Uint8Array(bytes)));
}

/**
 * Compares two secrets without leaking where they differ: `timingSafeEqual` needs equal lengths,
 * and hashing both first gives them that without revealing the expected secret's length.
 */
export async function secretsEqual(a: string, b: string): Promise<boolean> {
  const [ha, hb] = await Promise.all([a, b].map((s) => crypto.subtle.digest("SHA-256", new TextEncoder().encode(s))));
  return crypto.subtle.timingSafeEqual(ha!, hb!);
}
