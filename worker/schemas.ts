/** Request bodies, validated at the edge with zod (STYLE.md §7). Unknown fields are ignored. */
import { z } from "zod";
import { JKT_PATTERN } from "../core/dpop";
import { MAX_DESCRIPTION_LENGTH, VAULT_KEY_PATTERN } from "../core/limits";

const base64urlString = z.string().regex(/^[A-Za-z0-9_-]+$/, "must be base64url");

/** The agent's ephemeral ECDH public key (P-256 or X25519; sdk/README.md, "credentials.request()"). A private key is refused. */
export const publicJwkSchema = z
  .object(
    {
      kty: z.enum(["EC", "OKP"], { error: 'must be "EC" or "OKP"' }),
      crv: z.enum(["P-256", "X25519"], { error: 'must be "P-256" or "X25519"' }),
      x: base64urlString.length(43, "must be 43 base64url characters"),
      y: base64urlString.length(43, "must be 43 base64url characters").optional(),
      d: z.undefined({ error: "must be absent: send the public key only" }).optional(),
    },
    { error: "must be a JWK object" },
  )
  .refine((k) => (k.kty === "EC" ? k.crv === "P-256" && k.y !== undefined : k.crv === "X25519" && k.y === undefined), {
    error: "must be a P-256 (EC) or X25519 (OKP) public key",
  })
  .transform(({ kty, crv, x, y }) => (y === undefined ? { kty, crv, x } : { kty, crv, x, y }));

export const descriptionSchema = z
  .string({ error: "must be a string" })
  .min(1, "must not be empty")
  .max(MAX_DESCRIPTION_LENGTH, `must be at most ${MAX_DESCRIPTION_LENGTH} characters`);

export const vaultKeySchema = z.string({ error: "must be a string" }).regex(VAULT_KEY_PATTERN, "must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$");

export const emailSchema = z.string({ error: "must be a string" }).trim().max(254).pipe(z.email({ error: "must be an email address" }));

export const nameSchema = z.string({ error: "must be a string" }).trim().min(1, "must not be empty").max(100, "must be at most 100 characters");

/** RFC 9449 §10: the JWK SHA-256 thumbprint (RFC 7638) of the key the request is bound to. */
export const dpopJktSchema = z.string({ error: "must be a string" }).regex(JKT_PATTERN, "must be a base64url SHA-256 JWK thumbprint (43 characters)");

export const credentialRequestSchema = z.object({
  description: descriptionSchema,
  vault_key: vaultKeySchema,
  public_key: publicJwkSchema.optional(),
  hint: z.enum(["code", "push"], { error: 'must be "code" or "push"' }).optional(),
  dpop_jkt: dpopJktSchema.optional(),
});

/** `POST /v1/credentials/ack`: the handle of the delivery being acknowledged, one of the two kinds. */
export const acknowledgementSchema = z.union(
  [
    z.object({ device_code: z.string({ error: "must be a string" }).min(1, "must not be empty"), auth_req_id: z.undefined({ error: "give device_code or auth_req_id, not both" }).optional() }),
    z.object({ auth_req_id: z.string({ error: "must be a string" }).min(1, "must not be empty"), device_code: z.undefined({ error: "give device_code or auth_req_id, not both" }).optional() }),
  ],
  { error: "must name device_code or auth_req_id" },
);
