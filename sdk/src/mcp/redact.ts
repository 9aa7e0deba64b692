/**
 * Replaces every secret in text that goes back to the model with `[redacted:<label>]`: the value
 * itself, its URL-encoded form (encodeURIComponent), and its bytes as base64 (padded and not),
 * base64url and hex (lower and upper case). Longer forms first, so a value inside another's encoding
 * is not half-replaced.
 *
 * This stops an accidental echo, nothing more: a command that transforms a value any other way
 * (a prefix before base64, `rev`, one character per line, gzip, ...) is not caught, and a command
 * run with the agent's own user can read what that user can read. See sdk/README.md, "MCP server: keyferry mcp".
 */
export interface Redactor {
  redact(text: string): string;
  /** `redact`, then cut a tail that could be the start of a secret form (output cut off mid-secret). */
  redactTruncated(text: string): string;
}

export interface Secret {
  /** Shown in place of the value: `[redacted:<label>]`. */
  label: string;
  /** Text (a vault value, the API key) or raw bytes (the master seed). */
  value: string | Uint8Array;
}

/** A shorter cut-off tail is left alone: it tells next to nothing and would eat ordinary output. */
const MIN_PARTIAL = 4;
/** Shorter forms are not replaced: they would match ordinary output by chance. */
const MIN_FORM = 3;

export function createRedactor(secrets: Secret[]): Redactor {
  const byForm = new Map<string, string>();
  for (const { label, value } of secrets) {
    for (const form of formsOf(value)) if (form.length >= MIN_FORM && !byForm.has(form)) byForm.set(form, `[redacted:${label}]`);
  }
  const forms = [...byForm].map(([form, label]) => ({ form, label })).sort((a, b) => b.form.length - a.form.length);

  const redact = (text: string): string => {
    let out = text;
    for (const { form, label } of forms) out = out.split(form).join(label);
    return out;
  };
  return {
    redact,
    redactTruncated(text) {
      const out = redact(text);
      for (const { form, label } of forms) {
        for (let length = Math.min(form.length - 1, out.length); length >= MIN_PARTIAL; length--) {
          if (out.endsWith(form.slice(0, length))) return `${out.slice(0, out.length - length)}${label}`;
        }
      }
      return out;
    },
  };
}

/** Every encoding of `value` a command could print without meaning to. */
export function formsOf(value: string | Uint8Array): string[] {
  if (value.length === 0) return [];
  const bytes = Buffer.from(typeof value === "string" ? new TextEncoder().encode(value) : value);
  const base64 = bytes.toString("base64");
  const hex = bytes.toString("hex");
  const forms = [base64, base64.replace(/=+$/, ""), bytes.toString("base64url"), hex, hex.toUpperCase()];
  if (typeof value === "string") forms.push(value, encodeURIComponent(value));
  return [...new Set(forms)];
}
