// The SDK's client-side vault encryption, run inside workerd to show the core needs only WebCrypto,
// fetch and jose.
import { base64url, decodeProtectedHeader } from "jose";
import { describe, expect, it } from "vitest";
import { createClient, KeyferryError } from "../../sdk/src/index";
import { failure, fakeVaultServer, json } from "./sdk-fakes";

const BASE_URL = "https://keyferry.test";
const seed = () => crypto.getRandomValues(new Uint8Array(32));

function vaultClient(masterSeed: Uint8Array | string = seed()) {
  const server = fakeVaultServer();
  const ferry = createClient({ baseUrl: BASE_URL, apiKey: "kf_test", masterSeed, fetch: server.fetch });
  return { ferry, server };
}

/** Replaces one character of a compact JWE part (0 header, 1 key, 2 IV, 3 ciphertext, 4 tag). */
function tamper(jwe: string, part: number): string {
  const parts = jwe.split(".");
  const text = parts[part]!;
  const bytes = base64url.decode(text);
  bytes[0] = bytes[0]! ^ 0x01;
  parts[part] = base64url.encode(bytes);
  return parts.join(".");
}

describe("sdk vault", () => {
  it("round-trips a value and sends the server only a dir/A256GCM JWE bound to the name", async () => {
    const { ferry, server } = vaultClient();
    const value = "sk-live-Ünïcødé-secret-123";
    const put = await ferry.vault.put("openai-api-key", value);
    expect(put.vaultKey).toBe("openai-api-key");

    const stored = server.items.get("openai-api-key")!.ciphertext;
    expect(stored).not.toContain(value);
    expect(stored.split(".")).toHaveLength(5);
    expect(decodeProtectedHeader(stored)).toEqual({ alg: "dir", enc: "A256GCM", kf_vault: "v1", kf_vault_key: "openai-api-key" });
    expect(base64url.decode(stored.split(".")[2]!)).toHaveLength(12); // 96-bit IV
    const sent = server.exchanges.find((e) => e.method === "PUT")!;
    expect(sent.headers.get("authorization")).toBe("Bearer kf_test");
    expect(JSON.stringify(sent.body)).not.toContain(value);

    expect(await ferry.vault.get("openai-api-key")).toBe(value);
    expect((await ferry.vault.list()).map((item) => item.vaultKey)).toEqual(["openai-api-key"]);
    await ferry.vault.delete("openai-api-key");
    expect((await failure(ferry.vault.get("openai-api-key"))).code).toBe("NOT_FOUND");
  });

  it("draws a fresh IV for every put", async () => {
    const { ferry, server } = vaultClient();
    await ferry.vault.put("a", "same value");
    const first = server.items.get("a")!.ciphertext;
    await ferry.vault.put("a", "same value");
    const second = server.items.get("a")!.ciphertext;
    expect(first.split(".")[2]).not.toBe(second.split(".")[2]);
  });

  it("derives the same key from the seed as bytes or as base64url text", async () => {
    const bytes = seed();
    const writer = vaultClient(bytes);
    await writer.ferry.vault.put("k", "v");
    const reader = createClient({ baseUrl: BASE_URL, apiKey: "kf_test", masterSeed: base64url.encode(bytes), fetch: writer.server.fetch });
    expect(await reader.vault.get("k")).toBe("v");
  });

  it.each([
    ["ciphertext", 3],
    ["authentication tag", 4],
    ["IV", 2],
  ])("fails with DECRYPTION_FAILED when the %s was altered", async (_what, part) => {
    const { ferry, server } = vaultClient();
    await ferry.vault.put("github-token", "ghp_secret");
    const item = server.items.get("github-token")!;
    item.ciphertext = tamper(item.ciphertext, part);
    const error = await failure(ferry.vault.get("github-token"));
    expect(error.code).toBe("DECRYPTION_FAILED");
    expect(error.message).toMatch(/vault item "github-token" failed to decrypt: the ciphertext was altered/);
    expect(error.message).not.toContain("ghp_secret");
  });

  it("fails with DECRYPTION_FAILED when the name in the protected header was rewritten", async () => {
    const { ferry, server } = vaultClient();
    await ferry.vault.put("prod-db", "postgres://secret");
    const item = server.items.get("prod-db")!;
    const parts = item.ciphertext.split(".");
    const header = { alg: "dir", enc: "A256GCM", kf_vault: "v1", kf_vault_key: "dev-db" };
    parts[0] = base64url.encode(JSON.stringify(header));
    server.items.set("dev-db", { ...item, ciphertext: parts.join(".") });
    expect((await failure(ferry.vault.get("dev-db"))).code).toBe("DECRYPTION_FAILED");
  });

  it("refuses a ciphertext moved to another vault key name with VAULT_KEY_MISMATCH", async () => {
    const { ferry, server } = vaultClient();
    await ferry.vault.put("prod-db", "postgres://prod-secret");
    await ferry.vault.put("dev-db", "postgres://dev");
    server.items.set("dev-db", server.items.get("prod-db")!); // the server swaps the blobs
    const error = await failure(ferry.vault.get("dev-db"));
    expect(error.code).toBe("VAULT_KEY_MISMATCH");
    expect(error.message).toBe('the ciphertext stored as vault item "dev-db" was encrypted for vault item "prod-db"; refusing to use it');
  });

  it("cannot decrypt with another master seed", async () => {
    const writer = vaultClient();
    await writer.ferry.vault.put("k", "v");
    const other = createClient({ baseUrl: BASE_URL, apiKey: "kf_test", masterSeed: seed(), fetch: writer.server.fetch });
    expect((await failure(other.vault.get("k"))).code).toBe("DECRYPTION_FAILED");
  });

  it("refuses short or malformed master seeds and bad names before sending anything", async () => {
    expect(() => createClient({ baseUrl: BASE_URL, apiKey: "k", masterSeed: new Uint8Array(31) })).toThrow(/at least 32 bytes/);
    expect(() => createClient({ baseUrl: BASE_URL, apiKey: "k", masterSeed: "not base64url!" })).toThrow(KeyferryError);
    const { ferry, server } = vaultClient();
    expect((await failure(ferry.vault.put("../escape", "v"))).code).toBe("INVALID_ARGUMENT");
    const noSeed = createClient({ baseUrl: BASE_URL, apiKey: "k", fetch: server.fetch });
    expect((await failure(noSeed.vault.put("k", "v"))).message).toMatch(/masterSeed is required/);
    expect(server.exchanges).toHaveLength(0);
  });

  it("maps error answers to typed codes and checks answer fields", async () => {
    const answers: Response[] = [
      json(401, { error: "invalid_client", error_description: "bad key" }),
      json(409, { error: "vault_full", error_description: "1000 items" }),
      json(200, { vault_key: "k" }),
      new Response("<html>oops</html>", { status: 502 }),
    ];
    const ferry = createClient({ baseUrl: BASE_URL, apiKey: "kf_x", masterSeed: seed(), fetch: async () => answers.shift()! });
    expect((await failure(ferry.vault.put("k", "v"))).code).toBe("UNAUTHORIZED");
    expect((await failure(ferry.vault.put("k", "v"))).code).toBe("VAULT_FULL");
    expect((await failure(ferry.vault.get("k"))).code).toBe("INVALID_RESPONSE");
    expect((await failure(ferry.vault.list())).code).toBe("SERVER_ERROR");
    const offline = createClient({ baseUrl: BASE_URL, apiKey: "kf_x", fetch: async () => Promise.reject(new TypeError("fetch failed")) });
    expect((await failure(offline.vault.list())).code).toBe("NETWORK");
  });
});
