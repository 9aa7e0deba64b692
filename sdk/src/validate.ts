import { VAULT_KEY_PATTERN } from "../../core/limits";
import { KeyferryError } from "./errors";

export function checkVaultKey(vaultKey: unknown): string {
  if (typeof vaultKey !== "string" || !VAULT_KEY_PATTERN.test(vaultKey)) {
    throw new KeyferryError(
      "INVALID_ARGUMENT",
      "vaultKey must be 1-128 characters of A-Z, a-z, 0-9, '.', '_', '-', starting with a letter or digit",
    );
  }
  return vaultKey;
}

/** A record view of a JSON body, or an `INVALID_RESPONSE` naming what was expected. */
export function asObject(body: unknown, what: string): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new KeyferryError("INVALID_RESPONSE", `${what}: the server's answer is not a JSON object`);
  }
  return body as Record<string, unknown>;
}

export function stringField(body: Record<string, unknown>, field: string, what: string): string {
  const value = body[field];
  if (typeof value !== "string" || value === "") {
    throw new KeyferryError("INVALID_RESPONSE", `${what}: the server's answer lacks the string field "${field}"`);
  }
  return value;
}

export function optionalStringField(body: Record<string, unknown>, field: string, what: string): string | null {
  const value = body[field];
  if (value === undefined || value === null) return null;
  if (typeof value !== "string" || value === "") {
    throw new KeyferryError("INVALID_RESPONSE", `${what}: the server's field "${field}" is not a string`);
  }
  return value;
}

export function positiveIntegerField(body: Record<string, unknown>, field: string, what: string): number {
  const value = body[field];
  if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
    throw new KeyferryError("INVALID_RESPONSE", `${what}: the server's field "${field}" is not a positive integer`);
  }
  return value;
}
