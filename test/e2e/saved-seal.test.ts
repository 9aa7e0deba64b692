// The console's saved-credential sealing (approval-ui/src/saved-seal.ts), in Node's WebCrypto: a
// JWE only the same PRF output and the same item name open; jose reads it as `dir`/`A256GCM`.
import { randomBytes } from "node:crypto";
import { decodeProtectedHeader } from "jose";
import { describe, expect, it } from "vitest";
import { newPrfSalt, prfInput, seal, sealingKey, unseal } from "../../approval-ui/src/saved-seal.ts";

describe("saved credential sealing", () => {
  it("opens with the same PRF output and name, and with nothing else", async () => {
    const prf = randomBytes(32);
    const jwe = await seal("sk_live_sentinel", await sealingKey(prf, "stripe-sk"));
    expect(decodeProtectedHeader(jwe)).toEqual({ alg: "dir", enc: "A256GCM" });
    expect(jwe).not.toContain("sk_live_sentinel");
    expect(await unseal(jwe, await sealingKey(prf, "stripe-sk"))).toBe("sk_live_sentinel");
    expect(await unseal(jwe, await sealingKey(randomBytes(32), "stripe-sk"))).toBeNull();
    expect(await unseal(jwe, await sealingKey(prf, "github-token"))).toBeNull();
    const [header, , iv, ciphertext, tag] = jwe.split(".");
    expect(await unseal([header, "", iv, `${ciphertext}A`, tag].join("."), await sealingKey(prf, "stripe-sk"))).toBeNull();
  });

  it("draws a new 32-byte PRF input per item", () => {
    const salt = newPrfSalt();
    expect(prfInput(salt)).toHaveLength(32);
    expect(newPrfSalt()).not.toBe(salt);
  });
});
