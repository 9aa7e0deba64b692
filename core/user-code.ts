/**
 * User codes (RFC 8628 §6.1): 8 characters from a base-20 alphabet of consonants, so no vowels
 * spell words and no characters are easily confused; shown as XXXX-XXXX. 20^8 ≈ 2^34.6.
 */
export const USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ";
export const USER_CODE_LENGTH = 8;

/** Draws a user code with rejection sampling, so each character is uniform over the alphabet. */
export function generateUserCode(): string {
  let code = "";
  const limit = 256 - (256 % USER_CODE_ALPHABET.length);
  while (code.length < USER_CODE_LENGTH) {
    for (const byte of crypto.getRandomValues(new Uint8Array(16))) {
      if (byte < limit && code.length < USER_CODE_LENGTH) code += USER_CODE_ALPHABET[byte % USER_CODE_ALPHABET.length];
    }
  }
  return code;
}

/**
 * Canonical form of user input: upper case, dashes and white space removed (RFC 8628 §6.1).
 * Returns null when what is left is not a well-formed code.
 */
export function normalizeUserCode(input: string): string | null {
  const code = input.toUpperCase().replace(/[\s-]/g, "");
  if (code.length !== USER_CODE_LENGTH) return null;
  for (const char of code) if (!USER_CODE_ALPHABET.includes(char)) return null;
  return code;
}

/** XXXX-XXXX, the form shown to people. */
export function formatUserCode(code: string): string {
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}
