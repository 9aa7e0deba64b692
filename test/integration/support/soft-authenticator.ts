/**
 * TEST ONLY: a software passkey authenticator, so that integration tests can enrol and make real
 * assertions without a browser. It builds what a CTAP2 authenticator would (WebAuthn L3 §6.1
 * authenticator data, §8.7 "none" attestation, a COSE EC2 key, an ES256 signature in DER), with a
 * P-256 key in WebCrypto. The production code parses none of this itself: @simplewebauthn/server does.
 */
import { base64url } from "jose";

type Json = Record<string, any>;
const encoder = new TextEncoder();

export interface SoftCredential {
  id: Uint8Array;
  keys: CryptoKeyPair;
  userHandle: string;
  rpId: string;
  counter: number;
}

export interface AssertOptions {
  /** User verified flag (UV, bit 2). Default true. */
  userVerified?: boolean;
  /** Override the signature counter (default: previous + 1). */
  counter?: number;
  /** The origin put in clientDataJSON (default: the one the authenticator was made with). */
  origin?: string;
}

export class SoftAuthenticator {
  readonly credentials: SoftCredential[] = [];
  readonly origin: string;
  // A plain field, not a parameter property: bench/ runs this file under Node's type stripping.
  constructor(origin = "https://keyferry.test") {
    this.origin = origin;
  }

  /** navigator.credentials.create() with these options (PublicKeyCredentialCreationOptionsJSON). */
  async register(options: Json): Promise<Json> {
    const keys = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const id = crypto.getRandomValues(new Uint8Array(16));
    const rpId: string = options.rp.id;
    const credential: SoftCredential = { id, keys, userHandle: options.user.id, rpId, counter: 0 };
    this.credentials.push(credential);
    const jwk = (await crypto.subtle.exportKey("jwk", keys.publicKey)) as JsonWebKey;
    const coseKey = cborMap([
      [1, 2],
      [3, -7],
      [-1, 1],
      [-2, base64url.decode(jwk.x!)],
      [-3, base64url.decode(jwk.y!)],
    ]);
    const attested = concat(new Uint8Array(16), u16(id.byteLength), id, coseKey);
    const authData = concat(await rpIdHash(rpId), new Uint8Array([0x45]), u32(0), attested); // UP | UV | AT
    const clientDataJSON = clientData("webauthn.create", options.challenge, this.origin);
    const attestationObject = cborMap([
      ["fmt", "none"],
      ["attStmt", cborMap([])],
      ["authData", authData],
    ]);
    return {
      id: base64url.encode(id),
      rawId: base64url.encode(id),
      type: "public-key",
      clientExtensionResults: {},
      authenticatorAttachment: "platform",
      response: { clientDataJSON: base64url.encode(clientDataJSON), attestationObject: base64url.encode(attestationObject), transports: ["internal"] },
    };
  }

  /** navigator.credentials.get(): by the first allowed credential this authenticator holds, or (discoverable) its first. */
  async assert(options: Json, opts: AssertOptions = {}, credential?: SoftCredential): Promise<Json> {
    const allowed: string[] = (options.allowCredentials ?? []).map((c: Json) => c.id);
    const chosen = credential ?? this.credentials.find((c) => allowed.length === 0 || allowed.includes(base64url.encode(c.id)));
    if (!chosen) throw new Error("soft authenticator: no matching credential");
    chosen.counter = opts.counter ?? chosen.counter + 1;
    const flags = 0x01 | (opts.userVerified === false ? 0 : 0x04);
    const authData = concat(await rpIdHash(options.rpId ?? chosen.rpId), new Uint8Array([flags]), u32(chosen.counter));
    const clientDataJSON = clientData("webauthn.get", options.challenge, opts.origin ?? this.origin);
    const signed = concat(authData, new Uint8Array(await crypto.subtle.digest("SHA-256", clientDataJSON)));
    const raw = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, chosen.keys.privateKey, signed));
    return {
      id: base64url.encode(chosen.id),
      rawId: base64url.encode(chosen.id),
      type: "public-key",
      clientExtensionResults: {},
      authenticatorAttachment: "platform",
      response: {
        clientDataJSON: base64url.encode(clientDataJSON),
        authenticatorData: base64url.encode(authData),
        signature: base64url.encode(derSignature(raw)),
        userHandle: chosen.userHandle,
      },
    };
  }
}

function clientData(type: string, challenge: string, origin: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(encoder.encode(JSON.stringify({ type, challenge, origin, crossOrigin: false })));
}

async function rpIdHash(rpId: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(rpId)));
}

/** ES256 signatures in WebAuthn are ASN.1 DER (§6.5.5); WebCrypto gives r || s. */
function derSignature(raw: Uint8Array): Uint8Array {
  const integer = (bytes: Uint8Array) => {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    let v: Uint8Array = bytes.slice(i);
    if (v[0]! & 0x80) v = concat(new Uint8Array([0]), v);
    return concat(new Uint8Array([0x02, v.length]), v);
  };
  const body = concat(integer(raw.slice(0, 32)), integer(raw.slice(32)));
  return concat(new Uint8Array([0x30, body.length]), body);
}

// A minimal CBOR encoder (RFC 8949): small ints, text, bytes, maps. Test code only.
type CborValue = number | string | Uint8Array | { map: Array<[number | string, CborValue]> };
const cborMap = (entries: Array<[number | string, CborValue]>): Uint8Array => encode({ map: entries });

function head(major: number, length: number): Uint8Array {
  if (length < 24) return new Uint8Array([(major << 5) | length]);
  if (length < 256) return new Uint8Array([(major << 5) | 24, length]);
  return new Uint8Array([(major << 5) | 25, length >> 8, length & 0xff]);
}

function encode(value: CborValue): Uint8Array {
  if (typeof value === "number") return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (typeof value === "string") {
    const bytes = encoder.encode(value);
    return concat(head(3, bytes.length), bytes);
  }
  if (value instanceof Uint8Array) return concat(head(2, value.length), value);
  return concat(head(5, value.map.length), ...value.map.flatMap(([k, v]) => [encode(k), encode(v)]));
}

const u16 = (n: number) => new Uint8Array([n >> 8, n & 0xff]);
const u32 = (n: number) => new Uint8Array([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
