import { env } from "cloudflare:workers";
import { base64url } from "jose";
import { describe, expect, it } from "vitest";
import { signHandle, verifyHandle } from "../../worker/handles";

const fields = () => ({ userCode: "BCDFGHJK", expiresAt: Date.now() + 600_000, secret: crypto.getRandomValues(new Uint8Array(32)) });

describe("polling handles", () => {
  it("round-trips the user code, expiry, secret and tag", async () => {
    const input = fields();
    const signed = await signHandle(env, "device_code", input);
    const verified = await verifyHandle(env, "device_code", signed.handle);
    expect(verified).toEqual({ userCode: input.userCode, expiresAt: input.expiresAt, secret: base64url.encode(input.secret), tag: signed.tag });
  });

  it("keeps the two kinds apart: a device code is not an auth_req_id, nor the other way round", async () => {
    const input = fields();
    const deviceCode = (await signHandle(env, "device_code", input)).handle;
    const authReqId = (await signHandle(env, "auth_req_id", input)).handle;
    expect(await verifyHandle(env, "auth_req_id", deviceCode)).toBeNull();
    expect(await verifyHandle(env, "device_code", authReqId)).toBeNull();
    // Relabelled by hand, the tag no longer matches.
    expect(await verifyHandle(env, "auth_req_id", deviceCode.replace(/^kfd1/, "kfa1"))).toBeNull();
  });

  it("refuses every single-character change, truncation and extension", async () => {
    const { handle } = await signHandle(env, "device_code", fields());
    for (let at = 0; at < handle.length; at++) {
      const changed = handle.slice(0, at) + (handle[at] === "B" ? "C" : "B") + handle.slice(at + 1);
      expect(await verifyHandle(env, "device_code", changed)).toBeNull();
      expect(await verifyHandle(env, "device_code", handle.slice(0, at))).toBeNull();
    }
    expect(await verifyHandle(env, "device_code", `${handle}A`)).toBeNull();
    expect(await verifyHandle(env, "device_code", `${handle}.`)).toBeNull();
  });

  it("refuses another spelling of the same tag (the unused low bits of its last character set)", async () => {
    const { handle } = await signHandle(env, "device_code", fields());
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const last = alphabet.indexOf(handle.at(-1)!);
    expect(last % 4).toBe(0);
    for (const bits of [1, 2, 3]) {
      const respelled = handle.slice(0, -1) + alphabet[last + bits];
      expect(base64url.decode(respelled.split(".")[4]!)).toEqual(base64url.decode(handle.split(".")[4]!));
      expect(await verifyHandle(env, "device_code", respelled)).toBeNull();
    }
  });

  it("refuses a handle signed under another TOKEN_SIGNING_KEY", async () => {
    const otherKey = base64url.encode(crypto.getRandomValues(new Uint8Array(32)));
    const { handle } = await signHandle({ ...env, TOKEN_SIGNING_KEY: otherKey }, "device_code", fields());
    expect(await verifyHandle(env, "device_code", handle)).toBeNull();
    expect(await verifyHandle({ ...env, TOKEN_SIGNING_KEY: otherKey }, "device_code", handle)).not.toBeNull();
  });

  it("refuses shapes it never issues without verifying anything", async () => {
    const { handle } = await signHandle(env, "device_code", fields());
    const [kind, userCode, expiry, secret, tag] = handle.split(".");
    for (const shaped of [
      [kind, "bcdfghjk", expiry, secret, tag],
      [kind, "AEIOUAEI", expiry, secret, tag],
      [kind, userCode, "0123", secret, tag],
      [kind, userCode, "-1", secret, tag],
      [kind, userCode, expiry, `${secret}=`, tag],
      [kind, userCode, expiry, secret, `${tag}==`],
      [kind, userCode, expiry, secret],
      ["kfx1", userCode, expiry, secret, tag],
    ]) {
      expect(await verifyHandle(env, "device_code", shaped.join("."))).toBeNull();
    }
    expect(await verifyHandle(env, "device_code", "x".repeat(10_000))).toBeNull();
  });
});
