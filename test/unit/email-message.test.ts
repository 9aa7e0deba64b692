import { describe, expect, it } from "vitest";
import type { RequestDetails } from "../../durable-objects/request/request-types";
import { notificationMime, notificationText } from "../../durable-objects/account/notify/email-message";

const details: RequestDetails = {
  requestId: "req_x",
  userCode: "WDJBMJHT",
  accountId: "acc_123",
  accountName: "Acme",
  agent: { id: "agt_1", name: "evil\r\nBcc: victim@example.com", email: "bot@example.com" },
  apiKeyHash: "h",
  operatorEmail: "ops@example.com",
  description: "Stripe key\r\nSubject: phish",
  vaultKey: "stripe-sk",
  bindingMessage: null,
  protocol: "device",
  publicKey: null,
  encryptionKey: { kty: "EC" },
  wrappedPrivateKey: null,
  ping: null,
  dpopJkt: null,
  createdAt: 0,
};

describe("notification email", () => {
  const now = Date.UTC(2026, 10, 28, 12, 0, 0);
  const content = { details, expiresAt: now + 600_000, approvalUrl: "https://k.test/approve#link=abc", userCode: "WDJBMJHT" };

  it("says who asks, what for, the time left, the link, and to ignore it if unexpected", () => {
    const text = notificationText(content, now);
    expect(text).toContain("agt_1");
    expect(text).toContain("acc_123");
    expect(text).toContain("stripe-sk");
    expect(text).toContain("WDJB-MJHT");
    expect(text).toContain("about 10 minutes");
    expect(text).toContain("https://k.test/approve#link=abc");
    expect(text).toContain("If you did not expect this, ignore it");
  });

  it("keeps agent text out of the headers and folds its line breaks in the body", () => {
    const mime = notificationMime("keyferry@k.test", "ops@example.com", content, now);
    const [head, body] = mime.split("\r\n\r\n");
    expect(head).not.toMatch(/Bcc|phish/);
    expect(head).toContain("To: <ops@example.com>");
    expect(head).toMatch(/^Message-ID: <[0-9a-f-]+@k\.test>$/m);
    const decoded = new TextDecoder().decode(Uint8Array.from(atob(body!.replace(/\r\n/g, "")), (c) => c.charCodeAt(0)));
    expect(decoded).toContain("evil  Bcc: victim@example.com");
    expect(decoded.split("\r\n").some((line) => line.startsWith("Bcc:") || line.startsWith("Subject:"))).toBe(false);
  });
});
