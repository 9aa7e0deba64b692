import type { Actor } from "../durable-objects/request/request-types";
import type { z } from "zod";
import { HttpError, JSON_HEADERS, NO_STORE, badRequest } from "./errors";

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...JSON_HEADERS, ...headers },
  });
}

export function noContent(): Response {
  return new Response(null, { status: 204, headers: NO_STORE });
}

/**
 * How a body's bytes become text. `strict`: invalid UTF-8 is a 400. `lenient`: it becomes U+FFFD,
 * for bodies whose only field must be ASCII anyway (a polling handle, which then fails its own
 * check); the runtime's own `text()` then spares the poll a copy and a decoder call (bench/README.md).
 * A body without a declared length (chunked) is always decoded strictly.
 */
export type Utf8Decoding = "strict" | "lenient";

/** Reads at most `maxBytes` of the body; a larger body is 413 without reading the rest (or any of it, when declared). */
async function readBodyText(request: Request, maxBytes: number, decoding: Utf8Decoding): Promise<string> {
  const lengthHeader = request.headers.get("Content-Length");
  const declared = Number(lengthHeader ?? "0");
  if (declared > maxBytes) throw tooLarge(maxBytes);
  // A declared length within the limit is enforced by the runtime: read the body in one call
  // (without `request.body`, whose getter makes a stream object that this path does not need).
  if (lengthHeader !== null && Number.isInteger(declared)) {
    if (declared === 0) return "";
    return decoding === "lenient" ? request.text() : decodeUtf8(new Uint8Array(await request.arrayBuffer()));
  }
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return decodeUtf8(bytes);
}

/** Stateless between calls: `decode` without `stream` starts afresh every time. */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw badRequest("The body is not valid UTF-8.");
  }
}

const tooLarge = (maxBytes: number) =>
  new HttpError(413, "invalid_request", `The body is larger than this endpoint accepts (${maxBytes} bytes).`);

function requireMediaType(request: Request, expected: string): void {
  const type = (request.headers.get("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== expected) throw new HttpError(415, "invalid_request", `The body must be ${expected}.`);
}

/** Names the first failing field, so a client can fix its request (STYLE.md §7). */
function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return "The body is invalid.";
  const field = issue.path.join(".") || "body";
  return `${field}: ${issue.message}`;
}

export function parseWith<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw badRequest(describeIssue(result.error));
  return result.data;
}

/** A JSON body validated by `schema`: 415 for another media type, 413 over `maxBytes`, 400 otherwise. */
export async function readJson<S extends z.ZodType>(request: Request, schema: S, maxBytes: number): Promise<z.infer<S>> {
  return parseWith(schema, await readJsonValue(request, maxBytes));
}

/** A JSON body, parsed but not yet validated: 415 for another media type, 413 over `maxBytes`, 400 if it is not JSON. */
export async function readJsonValue(request: Request, maxBytes: number, decoding: Utf8Decoding = "strict"): Promise<unknown> {
  requireMediaType(request, "application/json");
  const text = await readBodyText(request, maxBytes, decoding);
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest("The body is not valid JSON.");
  }
}

/** An `application/x-www-form-urlencoded` body (RFC 6749 §3.2); repeated parameters are refused (§3.1). */
export async function readForm(request: Request, maxBytes: number): Promise<Record<string, string>> {
  requireMediaType(request, "application/x-www-form-urlencoded");
  const params = new URLSearchParams(await readBodyText(request, maxBytes, "strict"));
  const form: Record<string, string> = {};
  for (const [key, value] of params) {
    if (key in form) throw badRequest(`${key}: must not be repeated.`);
    form[key] = value;
  }
  return form;
}

/** The caller's address as Cloudflare saw it, or null when the header is absent (never at Cloudflare's edge). */
export function clientIp(request: Request): string | null {
  return request.headers.get("CF-Connecting-IP");
}

/** Who made a request, as the audit log records it. */
export function actorOf(request: Request): Actor {
  return { ip: clientIp(request) ?? "unknown", userAgent: request.headers.get("User-Agent") ?? "" };
}
