// The requests `keyferry mcp` is waiting on, by vault key, in this process's memory only: the device
// code (a secret) and, inside the SDK client, the ephemeral private key never touch the disk. A
// restarted server has forgotten them; request_credential then asks again.
import type { CredentialRequest } from "../request";

export interface PendingCredential {
  vaultKey: string;
  description: string;
  deviceCode: string;
  /** What the user opens: the complete verification URI when there is one. */
  url: string;
  userCode: string | null;
  keyFingerprint: string | null;
  requestedAt: number;
  expiresAt: number;
  /** A wait for it is running (one at a time). */
  waiting: boolean;
  /** The nonce of the one 2026-07-28 requestState that may resume this request (./approval-state.ts). */
  stateNonce?: string;
  /** Approved and decrypted, but not yet stored in the vault (the store failed): retried by the next wait. */
  approvedValue?: string;
}

export class PendingCredentials {
  readonly #byVaultKey = new Map<string, PendingCredential>();
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** The live request for `vaultKey`, if any; an expired one (never approved) is dropped. */
  get(vaultKey: string): PendingCredential | undefined {
    const entry = this.#byVaultKey.get(vaultKey);
    if (entry && entry.approvedValue === undefined && !entry.waiting && entry.expiresAt <= this.#now()) {
      this.#byVaultKey.delete(vaultKey);
      return undefined;
    }
    return entry;
  }

  add(vaultKey: string, description: string, request: CredentialRequest, requestedAt: number): PendingCredential {
    const entry: PendingCredential = {
      vaultKey,
      description,
      deviceCode: request.deviceCode,
      url: request.verificationUriComplete ?? request.verificationUri ?? "",
      userCode: request.userCode,
      keyFingerprint: request.keyFingerprint,
      requestedAt,
      expiresAt: request.expiresAt.getTime(),
      waiting: false,
    };
    this.#byVaultKey.set(vaultKey, entry);
    return entry;
  }

  delete(entry: PendingCredential): void {
    if (this.#byVaultKey.get(entry.vaultKey) === entry) this.#byVaultKey.delete(entry.vaultKey);
  }
}

/** "9 min 32 s" */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  const minutes = Math.floor(seconds / 60);
  return minutes > 0 ? `${minutes} min ${seconds % 60} s` : `${seconds} s`;
}

/** What the user must do, for the model to relay: the URL, the code and the fingerprint to check. */
export function instructions(entry: PendingCredential, now: number): string {
  const parts = [`Ask the user to open ${entry.url}`];
  if (entry.userCode) parts.push(`(code ${entry.userCode})`);
  let text = `${parts.join(" ")} and approve the request for "${entry.vaultKey}"`;
  if (entry.keyFingerprint) text += `; the page must show key fingerprint ${entry.keyFingerprint}`;
  return `${text}. It expires in ${formatDuration(entry.expiresAt - now)}.`;
}
