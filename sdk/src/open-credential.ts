import { compactDecrypt } from "jose";
import { CREDENTIAL_JWE_ALG, CREDENTIAL_JWE_ENC } from "../../core/jwe";
import { KeyferryError } from "./errors";
import type { PendingRequest } from "./request";
import { stringField } from "./validate";

export interface ApprovedCredential {
  vaultKey: string;
  description: string;
  /** The credential, decrypted on this machine in end-to-end mode. */
  credentialValue: string;
}

const WHAT = "credentials.waitForApproval";

/** The delivered credential from the poll's 200, decrypted with the request's private key in end-to-end mode. */
export async function openCredential(body: Record<string, unknown>, request: PendingRequest | undefined): Promise<ApprovedCredential> {
  const vaultKey = stringField(body, "vault_key", WHAT);
  const description = typeof body.description === "string" ? body.description : "";
  if (request && vaultKey !== request.vaultKey) {
    throw new KeyferryError("INVALID_RESPONSE", `${WHAT}: the server delivered a credential for another vault key than requested`);
  }
  const jwe = body.credential_jwe;
  const value = body.credential_value;

  if (typeof jwe === "string" && jwe !== "") {
    if (!request?.privateKey) {
      throw new KeyferryError("MISSING_KEY", "the credential is encrypted to a key this client does not hold (was the request made by another client?)");
    }
    let plaintext: Uint8Array;
    try {
      ({ plaintext } = await compactDecrypt(jwe, request.privateKey, {
        keyManagementAlgorithms: [CREDENTIAL_JWE_ALG],
        contentEncryptionAlgorithms: [CREDENTIAL_JWE_ENC],
      }));
    } catch {
      throw new KeyferryError("DECRYPTION_FAILED", "the delivered credential could not be decrypted with this client's private key");
    }
    try {
      return { vaultKey, description, credentialValue: new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(plaintext) };
    } catch {
      throw new KeyferryError("INVALID_RESPONSE", "the delivered credential is not UTF-8 text");
    }
  }
  if (typeof value === "string" && value !== "") {
    if (request?.privateKey) {
      // A server that answers in the clear what it was asked to pass end to end is not trusted with it.
      throw new KeyferryError("INVALID_RESPONSE", "end-to-end encryption was requested but the server delivered the credential in the clear");
    }
    return { vaultKey, description, credentialValue: value };
  }
  throw new KeyferryError("INVALID_RESPONSE", `${WHAT}: the server's answer lacks "credential_jwe" or "credential_value"`);
}
