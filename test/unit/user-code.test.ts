import { describe, expect, it } from "vitest";
import { USER_CODE_ALPHABET, formatUserCode, generateUserCode, normalizeUserCode } from "../../core/user-code";
import { keyFingerprint } from "../../core/fingerprint";

describe("user codes (RFC 8628 §6.1)", () => {
  it("draws 8 characters from the base-20 alphabet, every character in use", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const code = generateUserCode();
      expect(code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{8}$/);
      for (const c of code) seen.add(c);
    }
    expect(seen.size).toBe(USER_CODE_ALPHABET.length);
  });

  it("normalises case, dashes and spaces, and rejects anything else", () => {
    expect(normalizeUserCode("wdjb-mjht")).toBe("WDJBMJHT");
    expect(normalizeUserCode(" WDJB MJHT ")).toBe("WDJBMJHT");
    expect(normalizeUserCode("WD-JB-MJ-HT")).toBe("WDJBMJHT");
    expect(normalizeUserCode("WDJB-MJHA")).toBeNull(); // vowel
    expect(normalizeUserCode("WDJB-MJH")).toBeNull();
    expect(normalizeUserCode("WDJB-MJHTX")).toBeNull();
    expect(formatUserCode("WDJBMJHT")).toBe("WDJB-MJHT");
  });
});

describe("key fingerprint", () => {
  it("renders the RFC 7638 thumbprint as four groups and changes with the key", async () => {
    // RFC 7638 §3.1 example key (RSA) works too: the thumbprint is defined for any JWK.
    const a = await keyFingerprint({ kty: "OKP", crv: "X25519", x: "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo" });
    const b = await keyFingerprint({ kty: "OKP", crv: "X25519", x: "3p7bfXt9wbTTW2HC7OQ1Nz-DQ8hbeGdNrfx-FG-IK08" });
    expect(a).toMatch(/^[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}$/);
    expect(a).not.toBe(b);
    expect(await keyFingerprint({ x: "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo", crv: "X25519", kty: "OKP" })).toBe(a);
  });
});
