import { acknowledgeDelivery } from "./acknowledge";
import { KeyferryError } from "./errors";
import type { FetchLike, HttpContext } from "./http";
import { parseMasterSeed, type MasterSeed } from "./master-seed";
import { globalWebSocketFactory, type WebSocketFactory } from "./return-channel";
import { requestCredential, type CredentialRequest, type CredentialRequestOptions, type PendingRequest } from "./request";
import { defaultSleep, type Clock, type Sleep } from "./sleep";
import { createVault, type Vault } from "./vault";
import { deriveVaultKey } from "./vault-crypto";
import { waitForApproval, type ApprovedCredential, type WaitOptions } from "./wait";

export interface ClientOptions {
  /** The Keyferry server, e.g. `https://keyferry.example.workers.dev`. */
  baseUrl: string;
  /** The agent's API key, as the admin API returned it when the agent was created (opaque to the SDK). */
  apiKey: string;
  /** At least 32 bytes, or their base64url text. Needed only for the vault. Never sent. */
  masterSeed?: MasterSeed;
  /** A `fetch` to use instead of the global one. */
  fetch?: FetchLike;
  /**
   * How to open the return channel (sdk/README.md, "credentials.waitForApproval()"): default the runtime's global
   * WebSocket (Node 22+, Bun, Deno, Workers) unless a custom `fetch` is given, since the socket would
   * bypass that transport (a proxy, a test double); `false` to poll only.
   */
  webSocket?: WebSocketFactory | false;
  /** For tests: how to wait, and what time it is (both in milliseconds). */
  sleep?: Sleep;
  now?: Clock;
}

export interface KeyferryClient {
  credentials: {
    /** Asks the operator for a credential (RFC 8628 device authorization request). */
    request(options: CredentialRequestOptions): Promise<CredentialRequest>;
    /** Waits for the operator's decision (return channel, else polling), then returns the decrypted credential. */
    waitForApproval(deviceCode: string, options?: WaitOptions): Promise<ApprovedCredential>;
    /**
     * After `waitForApproval(code, { acknowledge: false })` and storing the credential: the server may
     * forget the answer it kept for a lost response (key-bound requests; a no-op otherwise).
     */
    acknowledge(deviceCode: string, options?: { signal?: AbortSignal }): Promise<void>;
  };
  vault: Vault;
}

/**
 * A Keyferry client. Everything it keeps (ephemeral private and DPoP keys by device code, the derived vault
 * key) lives in this object; there is no global state, and two clients share nothing.
 */
export function createClient(options: ClientOptions): KeyferryClient {
  if (typeof options !== "object" || options === null) throw new KeyferryError("INVALID_ARGUMENT", "createClient needs options");
  const baseUrl = checkBaseUrl(options.baseUrl);
  if (typeof options.apiKey !== "string" || options.apiKey.trim() === "") {
    throw new KeyferryError("INVALID_ARGUMENT", "apiKey must be a non-empty string");
  }
  const fetchImpl: FetchLike = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const http: HttpContext = { baseUrl, apiKey: options.apiKey.trim(), fetch: fetchImpl };
  const clock = { now: options.now ?? (() => Date.now()), sleep: options.sleep ?? defaultSleep };

  let vaultKey: Promise<CryptoKey> | undefined;
  if (options.masterSeed !== undefined) {
    vaultKey = deriveVaultKey(parseMasterSeed(options.masterSeed));
    vaultKey.catch(() => undefined); // surfaced by the first vault call, not as an unhandled rejection
  }

  const webSocket = options.webSocket === false ? undefined : (options.webSocket ?? (options.fetch ? undefined : globalWebSocketFactory()));

  const pending = new Map<string, PendingRequest>();
  return {
    credentials: {
      request: (requestOptions) => requestCredential(http, clock.now, pending, requestOptions),
      waitForApproval: (deviceCode, waitOptions) => waitForApproval(http, clock, webSocket, pending, deviceCode, waitOptions),
      acknowledge: (deviceCode, ackOptions) => acknowledgeDelivery(http, clock.now, pending, deviceCode, ackOptions?.signal),
    },
    vault: createVault(http, vaultKey),
  };
}

function checkBaseUrl(value: unknown): string {
  if (typeof value !== "string") throw new KeyferryError("INVALID_ARGUMENT", "baseUrl must be a URL string");
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new KeyferryError("INVALID_ARGUMENT", "baseUrl is not a valid URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new KeyferryError("INVALID_ARGUMENT", "baseUrl must be http(s)");
  if (url.search || url.hash) throw new KeyferryError("INVALID_ARGUMENT", "baseUrl must not have a query or fragment");
  return url.href.replace(/\/+$/, "");
}
