/**
 * Generators of hostile input for the property tests (test/integration/property-*.test.ts), and
 * the one check every refusal must pass: the contract's error shape, a 4xx, no-store, no stack trace.
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { expect } from "vitest";
import { VAULT_KEY_PATTERN } from "../../../core/limits";
import { normalized, type Answer, type ApiResponse } from "./api";
import { requestStub } from "../../../worker/stubs";
import { storedRow } from "./request-row";

/** Bounded runs: every property together stays well under a minute inside workerd. */
export const RUNS = { numRuns: 200, interruptAfterTimeLimit: 15_000 } as const;

const NASTY = [
  "",
  " ",
  "null",
  "undefined",
  "[]",
  "{}",
  "__proto__",
  "constructor",
  '{"__proto__":{"admin":true}}',
  "\u0000",
  "%00",
  "%",
  "%E0%A4%A",
  "../../etc/passwd",
  "<script>alert(1)</script>",
  "'; DROP TABLE request; --",
  "\u202eevil\u202c",
  "\ud800",
  "\ufeff",
  "A\u0301\u0301\u0301",
  "💥".repeat(60),
  "x".repeat(5000),
  "WDJB-MJHT",
  "BCDF-GHJK",
  "Bearer ",
  "kf1.acc_x.agt_y.z",
  "eyJhbGciOiJub25lIn0.eyJ1YyI6IkJDREZHSEpLIn0.",
  "eyJhbGciOiJIUzI1NiJ9.e30.AAAA",
];

/** Any string, including lone surrogates, control characters, bidi overrides and long runs. */
export const hostileString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 80 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.constantFrom(...NASTY),
  fc.tuple(fc.string({ minLength: 1, maxLength: 3 }), fc.integer({ min: 50, max: 3000 })).map(([s, n]) => s.repeat(n)),
);

/** Any JSON value, hostile strings included. */
export const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(null, true, false, 0, -1, 1e308, [], {}),
);

/** A raw request body: text that may or may not be JSON, or bytes that may not be UTF-8. */
export const hostileBody: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  hostileString,
  hostileJson.map((value) => JSON.stringify(value) ?? "null"),
  fc.uint8Array({ maxLength: 64 }),
);

/** What of a string survives as a header value a client can send: visible ASCII and spaces. */
export const headerSafe = (s: string) => s.replace(/[^\x20-\x7e]/g, "").trim();

/** A header value a client can actually send. */
export const headerValue = fc.oneof(
  fc.string({ unit: "binary-ascii", maxLength: 200 }).map(headerSafe),
  hostileString.map(headerSafe),
  fc.constantFrom("", "Bearer", "Bearer ", "Basic", "Basic !!!", "Basic Og==", "bearer kf1", "kf_approval=", "kf_approval=x; kf_approval=y"),
);

export const contentType = fc.oneof(
  fc.constantFrom(
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=utf-16",
    "APPLICATION/JSON",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "",
  ),
  headerValue,
);

/** A vault key the contract refuses (the pattern is ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$). */
export const badVaultKey: fc.Arbitrary<unknown> = fc.oneof(
  hostileString.filter((s) => !VAULT_KEY_PATTERN.test(s)),
  fc.constantFrom(null, 1, true, [], {}, "-lead", ".lead", "a b", "k".repeat(129), "a/b", "ä"),
);

/** A path segment, percent-encoded as a client would (strings that cannot be encoded are skipped). */
export const pathSegment = hostileString
  .map((s) => {
    try {
      return encodeURIComponent(s);
    } catch {
      return "%ZZ";
    }
  })
  .filter((s) => s.length > 0);

/**
 * The contract's refusal: a 4xx, exactly `{error, error_description}`, `Cache-Control: no-store`,
 * and nothing that looks like a stack trace or an internal message.
 */
export function expectCleanRefusal(answer: ApiResponse<unknown>, allowed?: number[]): void {
  if (allowed) expect(allowed).toContain(answer.status);
  expect(answer.status).toBeGreaterThanOrEqual(400);
  expect(answer.status).toBeLessThan(500);
  expect(answer.headers.get("Cache-Control")).toContain("no-store");
  expect(answer.body).toBeTypeOf("object");
  expect(answer.body).not.toBeNull();
  const body = answer.body as Answer;
  expect(Object.keys(body).sort()).toEqual(["error", "error_description"]);
  expect(body.error).toMatch(/^[a-z_]+$/);
  expect(body.error_description).toBeTypeOf("string");
  expect(JSON.stringify(body)).not.toMatch(/\n\s+at |\bat .+:\d+:\d+|Error:|TypeError|SyntaxError|RangeError|\.ts\b|node_modules|workerd|internal error/);
}

/** A live request's stored state, straight from its Durable Object. */
export async function requestRow(userCode: string) {
  const stub = requestStub(env, normalized(userCode));
  return runInDurableObject(stub, (_instance, state) => {
    const { status, failed_attempts, claim_hash, interval, payload } = storedRow(state);
    return { status, failed_attempts, claim_hash, interval, payload };
  });
}
