/**
 * The one JWE profile for credentials in transit and at rest (README, "What the service can see"):
 * ECDH-ES key agreement with AES key wrap (RFC 7518 §4.6), AES-256-GCM content encryption.
 */
export const CREDENTIAL_JWE_ALG = "ECDH-ES+A256KW";
export const CREDENTIAL_JWE_ENC = "A256GCM";
export const CREDENTIAL_JWE_HEADER = { alg: CREDENTIAL_JWE_ALG, enc: CREDENTIAL_JWE_ENC } as const;
