/**
 * An operator's saved credentials (README, "Saved credentials"): compact JWEs their browser sealed
 * under a key derived from a passkey's PRF output, kept in the operator's own SavedCredentialsDO
 * (worker/stubs.ts names it by account and operator). The session is checked first, at the edge, so
 * a missing or forged cookie reaches no object; only the operator who saved an item can reach it.
 */
import type { IRequest } from "itty-router";
import { decodeProtectedHeader } from "jose";
import { z } from "zod";
import { MAX_CREDENTIAL_JWE_BYTES } from "../../core/limits";
import type { SavedCredentialBody, SavedCredentialEntryBody, SavedCredentialListBody } from "../../core/wire";
import type { SavedEntry } from "../../durable-objects/saved/saved-credentials-do";
import { consoleReader, consoleWriter } from "../console-access";
import { HttpError, badRequest, notFound } from "../errors";
import { json, noContent, readJson } from "../http";
import { accountStub, savedStub } from "../stubs";
import { vaultKeyParam } from "./vault";

/** A sealed item: a 16 KiB credential as a `dir` JWE is under 22 KiB; the same cap as a decision's JWE. */
const MAX_SAVED_BODY = MAX_CREDENTIAL_JWE_BYTES + 1024;

/** RFC 7516 §7.1 with `dir` (§4.5 of RFC 7518): the encrypted-key part is empty. */
const directJwe = /^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

const putSchema = z.object({
  jwe: z
    .string({ error: "must be a string" })
    .max(MAX_CREDENTIAL_JWE_BYTES, `must be at most ${MAX_CREDENTIAL_JWE_BYTES} bytes`)
    .regex(directJwe, "must be a compact JWE with an empty encrypted key (alg dir)")
    .refine(isSealedHeader, "must use alg dir and enc A256GCM"),
  passkey_id: z.string({ error: "must be a string" }).regex(/^[A-Za-z0-9_-]{1,1364}$/, "must be a base64url credential ID"),
  prf_salt: z.string({ error: "must be a string" }).regex(/^[A-Za-z0-9_-]{43}$/, "must be 32 bytes, base64url without padding"),
});

function isSealedHeader(jwe: string): boolean {
  try {
    const header = decodeProtectedHeader(jwe);
    return header.alg === "dir" && header.enc === "A256GCM";
  } catch {
    return false;
  }
}

const entryJson = (entry: SavedEntry): SavedCredentialEntryBody => ({
  name: entry.name,
  passkey_id: entry.passkeyId,
  prf_salt: entry.prfSalt,
  updated_at: new Date(entry.updatedAt).toISOString(),
});

export async function listSaved(request: IRequest, env: Env): Promise<Response> {
  const session = await consoleReader(request, env);
  const items = await savedStub(env, session.accountId, session.operator.operatorId).list();
  return json({ items: items.map(entryJson) } satisfies SavedCredentialListBody);
}

export async function getSaved(request: IRequest, env: Env): Promise<Response> {
  const name = vaultKeyParam(request, "name");
  const session = await consoleReader(request, env);
  const result = await savedStub(env, session.accountId, session.operator.operatorId).get(name);
  if (result.reason === "not_found") throw noSuchItem();
  return json({ ...entryJson(result.item), jwe: result.item.jwe } satisfies SavedCredentialBody);
}

export async function putSaved(request: IRequest, env: Env): Promise<Response> {
  const name = vaultKeyParam(request, "name");
  const session = await consoleWriter(request, env);
  const body = await readJson(request, putSchema, MAX_SAVED_BODY);
  // Sealed by one of the operator's own passkeys: the only ones the console lets reopen it.
  const passkey = await accountStub(env, session.accountId).operatorPasskey(body.passkey_id);
  if (passkey?.operator.operatorId !== session.operator.operatorId) throw badRequest("passkey_id: is not one of your passkeys");
  const result = await savedStub(env, session.accountId, session.operator.operatorId).put({ name, jwe: body.jwe, passkeyId: body.passkey_id, prfSalt: body.prf_salt });
  switch (result.reason) {
    case "full":
      throw new HttpError(409, "saved_full", "You have the most saved credentials allowed; delete one first.");
    case "stored":
      return noContent();
  }
}

export async function deleteSaved(request: IRequest, env: Env): Promise<Response> {
  const name = vaultKeyParam(request, "name");
  const session = await consoleWriter(request, env);
  if (!(await savedStub(env, session.accountId, session.operator.operatorId).remove(name))) throw noSuchItem();
  return noContent();
}

const noSuchItem = () => notFound("You have no saved credential of that name.");
