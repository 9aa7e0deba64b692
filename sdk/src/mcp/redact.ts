/**
 * Replaces every secret value in text that goes back to the model with `[redacted:<vault_key>]`:
 * the value itself, its base64 (padded and not), base64url and URL-encoded (encodeURIComponent)
 * forms. Longer forms first, so a value inside another's encoding is not half-replaced.
 * This stops an accidental echo; a command that transforms a value some other way is not caught.
 */
export interface Redactor {
  redact(text: string): string;
  /** `redact`, then cut a tail that could be the start of a secret form (output cut off mid-secret). */
  redactTruncated(text: string): string;
}

/** A shorter cut-off tail is left alone: it tells next to nothing and would eat ordinary output. */
const MIN_PARTIAL = 4;

export function createRedactor(secrets: Array<{ vaultKey: string; value: string }>): Redactor {
  const forms: Array<{ form: string; label: string }> = [];
  for (const { vaultKey, value } of secrets) {
    if (value === "") continue;
    const bytes = new TextEncoder().encode(value);
    const base64 = Buffer.from(bytes).toString("base64");
    const variants = new Set([value, base64, base64.replace(/=+$/, ""), Buffer.from(bytes).toString("base64url"), encodeURIComponent(value)]);
    for (const form of variants) forms.push({ form, label: `[redacted:${vaultKey}]` });
  }
  forms.sort((a, b) => b.form.length - a.form.length);

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
