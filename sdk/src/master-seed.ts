import { base64url } from "jose";
import { KeyferryError } from "./errors";

/** Fewer bytes than this could not carry a 256-bit key's worth of entropy. */
export const MIN_MASTER_SEED_BYTES = 32;

/** A master seed as bytes, or as the base64url text `keyferry init` writes (whitespace is ignored). */
export type MasterSeed = Uint8Array | string;

/** Checks and normalises a master seed to a fresh byte array. The seed never appears in a message. */
export function parseMasterSeed(seed: MasterSeed): Uint8Array<ArrayBuffer> {
  let bytes: Uint8Array;
  if (seed instanceof Uint8Array) {
    bytes = seed.slice();
  } else if (typeof seed === "string") {
    const text = seed.trim();
    if (!/^[A-Za-z0-9_-]+$/.test(text)) {
      throw new KeyferryError("INVALID_ARGUMENT", "masterSeed must be base64url text (A-Z, a-z, 0-9, '-', '_')");
    }
    try {
      bytes = base64url.decode(text);
    } catch {
      throw new KeyferryError("INVALID_ARGUMENT", "masterSeed is not valid base64url");
    }
  } else {
    throw new KeyferryError("INVALID_ARGUMENT", "masterSeed must be a Uint8Array or a base64url string");
  }
  if (bytes.byteLength < MIN_MASTER_SEED_BYTES) {
    throw new KeyferryError("INVALID_ARGUMENT", `masterSeed must be at least ${MIN_MASTER_SEED_BYTES} bytes`);
  }
  return new Uint8Array(bytes);
}

/** A new random master seed (32 bytes) as base64url text, the format `keyferry init` stores. */
export function generateMasterSeed(): string {
  return base64url.encode(crypto.getRandomValues(new Uint8Array(MIN_MASTER_SEED_BYTES)));
}
