import { describe, expect, it } from "vitest";
import { signWebhook, verifyWebhook } from "../../core/webhook-signature";

describe("webhook signatures", () => {
  const secret = "whsec_test";
  const body = '{"type":"credential.requested"}';

  it("signs t.<body> with HMAC-SHA256 as hex, and verifies it", async () => {
    const header = await signWebhook(secret, body, 1_700_000_000);
    expect(header).toMatch(/^t=1700000000,v1=[0-9a-f]{64}$/);
    // Independent computation of the same MAC with WebCrypto.
    const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`1700000000.${body}`)));
    expect(header.split("v1=")[1]).toBe(Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join(""));
    expect(await verifyWebhook(secret, body, header, 1_700_000_010)).toBe(true);
  });

  it("rejects a changed body, another secret, a stale timestamp and junk headers", async () => {
    const header = await signWebhook(secret, body, 1_700_000_000);
    expect(await verifyWebhook(secret, `${body} `, header, 1_700_000_000)).toBe(false);
    expect(await verifyWebhook("whsec_other", body, header, 1_700_000_000)).toBe(false);
    expect(await verifyWebhook(secret, body, header, 1_700_000_000 + 301)).toBe(false);
    expect(await verifyWebhook(secret, body, header.replace("t=1700000000", "t=1700000100"), 1_700_000_100)).toBe(false);
    const flipped = header.slice(0, -1) + (header.endsWith("0") ? "1" : "0");
    expect(await verifyWebhook(secret, body, flipped, 1_700_000_000)).toBe(false);
    expect(await verifyWebhook(secret, body, header.toUpperCase().replace("T=", "t=").replace("V1=", "v1="), 1_700_000_000)).toBe(false);
    for (const junk of [null, "", "v1=abc", "t=x,v1=y", `t=1700000000,v1=${"g".repeat(64)}`]) expect(await verifyWebhook(secret, body, junk, 1_700_000_000)).toBe(false);
  });
});
