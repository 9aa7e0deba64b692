/**
 * The browser's WebAuthn answers as `@simplewebauthn/browser` serialises them
 * (RegistrationResponseJSON, AuthenticationResponseJSON; WebAuthn L3 §5.1.8 toJSON), checked at the
 * edge for shape and size only: their meaning is checked by @simplewebauthn/server (core/webauthn.ts).
 */
import { z } from "zod";
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from "../../core/webauthn";

/** §6.1: a credential ID is at most 1023 bytes (1364 base64url characters). */
const credentialId = z.string({ error: "must be a base64url string" }).regex(/^[A-Za-z0-9_-]{1,1364}$/, "must be a base64url credential ID");
const b64 = (max: number) => z.string({ error: "must be a base64url string" }).regex(/^[A-Za-z0-9_-]*$/, "must be base64url").max(max, `must be at most ${max} characters`);

/** An attestation object of a passkey with `none` attestation is a few hundred bytes; 8 KiB leaves room for packed certificates. */
export const MAX_ATTESTATION_CHARS = 8 * 1024;
/** The largest body an enrolment or assertion needs, with room to spare. */
export const MAX_WEBAUTHN_BODY = 24 * 1024;

const common = {
  id: credentialId,
  rawId: credentialId,
  type: z.literal("public-key", { error: 'must be "public-key"' }),
  clientExtensionResults: z.record(z.string(), z.unknown(), { error: "must be an object" }),
  authenticatorAttachment: z.enum(["platform", "cross-platform"]).optional(),
};

export const registrationResponseSchema = z.object(
  {
    ...common,
    response: z.object(
      {
        clientDataJSON: b64(4096),
        attestationObject: b64(MAX_ATTESTATION_CHARS),
        transports: z.array(z.string().max(32)).max(10).optional(),
        authenticatorData: b64(4096).optional(),
        publicKey: b64(4096).optional(),
        publicKeyAlgorithm: z.number().int().optional(),
      },
      { error: "must be an object" },
    ),
  },
  { error: "must be a RegistrationResponseJSON object" },
) satisfies z.ZodType<RegistrationResponseJSON>;

export const authenticationResponseSchema = z.object(
  {
    ...common,
    response: z.object(
      {
        clientDataJSON: b64(4096),
        authenticatorData: b64(4096),
        signature: b64(2048),
        userHandle: b64(128).optional(),
      },
      { error: "must be an object" },
    ),
  },
  { error: "must be an AuthenticationResponseJSON object" },
) satisfies z.ZodType<AuthenticationResponseJSON>;
