/**
 * Keyferry agent SDK. Runs on Node 22+, Bun, Deno and Cloudflare Workers: it uses only `fetch`,
 * WebCrypto and jose.
 */
export { createClient, type ClientOptions, type KeyferryClient } from "./client";
export { KeyferryError, isKeyferryError, type KeyferryErrorCode } from "./errors";
export type { FetchLike } from "./http";
export { generateMasterSeed, MIN_MASTER_SEED_BYTES, type MasterSeed } from "./master-seed";
export type { CredentialRequest, CredentialRequestOptions } from "./request";
export type { WebSocketFactory, WebSocketLike } from "./return-channel";
export type { Clock, Sleep } from "./sleep";
export type { Vault, VaultCallOptions, VaultItem } from "./vault";
export { VAULT_FORMAT, VAULT_HKDF_INFO, VAULT_HKDF_SALT } from "./vault-crypto";
export type { ApprovedCredential, WaitOptions } from "./wait";
/** RFC 8628 §3.5: each `slow_down` raises the polling interval by this many seconds, for good. */
export { SLOW_DOWN_STEP_SECONDS } from "../../core/limits";
