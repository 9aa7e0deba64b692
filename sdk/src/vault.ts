import { KeyferryError } from "./errors";
import { callApi, errorFromResponse, type HttpContext } from "./http";
import { asObject, checkVaultKey, stringField } from "./validate";
import { decryptVaultValue, encryptVaultValue } from "./vault-crypto";

export interface VaultItem {
  vaultKey: string;
  /** ISO 8601 time of the last `put`, as the server reports it. */
  updatedAt: string;
}

export interface VaultCallOptions {
  signal?: AbortSignal;
}

export interface Vault {
  /** Encrypts `value` on this machine and stores only the ciphertext under `vaultKey`. */
  put(vaultKey: string, value: string | Uint8Array, options?: VaultCallOptions): Promise<VaultItem>;
  /** Fetches and decrypts a UTF-8 value. Throws `NOT_FOUND`, `DECRYPTION_FAILED` or `VAULT_KEY_MISMATCH`. */
  get(vaultKey: string, options?: VaultCallOptions): Promise<string>;
  /** Like `get`, for binary values. */
  getBytes(vaultKey: string, options?: VaultCallOptions): Promise<Uint8Array>;
  /** Names and update times of this agent's items (no values). */
  list(options?: VaultCallOptions): Promise<VaultItem[]>;
  /** Deletes an item; deleting a missing item succeeds. */
  delete(vaultKey: string, options?: VaultCallOptions): Promise<void>;
}

/** The vault API of one client. `vaultKeyPromise` is `undefined` when the client has no master seed. */
export function createVault(http: HttpContext, vaultKeyPromise: Promise<CryptoKey> | undefined): Vault {
  const encryptionKey = (action: string): Promise<CryptoKey> => {
    if (!vaultKeyPromise) throw new KeyferryError("INVALID_ARGUMENT", `a masterSeed is required for vault.${action}`);
    return vaultKeyPromise;
  };
  const path = (vaultKey: string) => `/v1/vault/${encodeURIComponent(checkVaultKey(vaultKey))}`;

  const getBytes = async (vaultKey: string, options: VaultCallOptions = {}): Promise<Uint8Array> => {
    const key = await encryptionKey("get");
    const response = await callApi(http, { method: "GET", path: path(vaultKey), auth: true, signal: options.signal });
    if (response.status !== 200) throw errorFromResponse(response, `vault.get("${vaultKey}")`);
    const body = asObject(response.body, "vault.get");
    const ciphertext = stringField(body, "ciphertext", "vault.get");
    if (body.vault_key !== vaultKey) {
      throw new KeyferryError("INVALID_RESPONSE", `vault.get: the server answered for another vault key than "${vaultKey}"`);
    }
    return decryptVaultValue(key, vaultKey, ciphertext);
  };

  return {
    async put(vaultKey, value, options = {}) {
      if (typeof value !== "string" && !(value instanceof Uint8Array)) {
        throw new KeyferryError("INVALID_ARGUMENT", "vault.put: value must be a string or a Uint8Array");
      }
      const target = path(vaultKey);
      const ciphertext = await encryptVaultValue(await encryptionKey("put"), vaultKey, value);
      const response = await callApi(http, { method: "PUT", path: target, body: { ciphertext }, auth: true, signal: options.signal });
      if (response.status !== 200) throw errorFromResponse(response, `vault.put("${vaultKey}")`);
      return readItem(response.body, "vault.put");
    },

    async get(vaultKey, options) {
      const bytes = await getBytes(vaultKey, options);
      try {
        return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
      } catch {
        throw new KeyferryError("INVALID_ARGUMENT", `vault item "${vaultKey}" is not UTF-8 text; use vault.getBytes`);
      }
    },

    getBytes,

    async list(options = {}) {
      const response = await callApi(http, { method: "GET", path: "/v1/vault", auth: true, signal: options.signal });
      if (response.status !== 200) throw errorFromResponse(response, "vault.list");
      const items = asObject(response.body, "vault.list").items;
      if (!Array.isArray(items)) throw new KeyferryError("INVALID_RESPONSE", 'vault.list: the server\'s answer lacks the array "items"');
      return items.map((item) => readItem(item, "vault.list"));
    },

    async delete(vaultKey, options = {}) {
      const response = await callApi(http, { method: "DELETE", path: path(vaultKey), auth: true, signal: options.signal });
      if (response.status !== 204 && response.status !== 200) throw errorFromResponse(response, `vault.delete("${vaultKey}")`);
    },
  };
}

function readItem(body: unknown, what: string): VaultItem {
  const item = asObject(body, what);
  return { vaultKey: stringField(item, "vault_key", what), updatedAt: stringField(item, "updated_at", what) };
}
