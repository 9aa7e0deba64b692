/**
 * The zero-knowledge vault (README, "For agent developers: the SDK and CLI"): each agent sees only
 * its own ciphertext. The vault object speaks in domain values; the wire JSON is built here.
 */
import type { IRequest } from "itty-router";
import { z } from "zod";
import { MAX_VAULT_CIPHERTEXT_BYTES } from "../../core/limits";
import type { VaultItemBody, VaultListBody, VaultStoredBody } from "../../core/wire";
import type { VaultEntry } from "../../durable-objects/vault/vault-do";
import { agentFromBearer, requireAgent } from "../auth";
import { HttpError, badRequest, notFound } from "../errors";
import { json, noContent, parseWith, readJson } from "../http";
import { vaultKeySchema } from "../schemas";
import { vaultStub } from "../stubs";

const putSchema = z.object({
  ciphertext: z
    .string({ error: "must be a string" })
    .min(1, "must not be empty")
    .max(MAX_VAULT_CIPHERTEXT_BYTES, `must be at most ${MAX_VAULT_CIPHERTEXT_BYTES} bytes`),
});

async function agentVault(request: IRequest, env: Env) {
  const credentials = await agentFromBearer(request, env);
  await requireAgent(env, credentials);
  return vaultStub(env, credentials.agentId);
}

/** A vault key in the path (also a saved credential's name, `param` "name"): percent-decoded, then checked. */
export function vaultKeyParam(request: IRequest, param = "vault_key"): string {
  let raw: string;
  try {
    raw = decodeURIComponent(request.params[param] ?? "");
  } catch {
    throw badRequest(`${param}: is not valid percent-encoding`);
  }
  return parseWith(vaultKeySchema, raw);
}

const entryJson = (entry: VaultEntry) =>
  ({ vault_key: entry.vaultKey, updated_at: new Date(entry.updatedAt).toISOString() }) satisfies VaultStoredBody;

export async function putItem(request: IRequest, env: Env): Promise<Response> {
  const vaultKey = vaultKeyParam(request);
  const vault = await agentVault(request, env);
  const { ciphertext } = await readJson(request, putSchema, MAX_VAULT_CIPHERTEXT_BYTES + 1024);
  const result = await vault.put(vaultKey, ciphertext);
  switch (result.reason) {
    case "vault_full":
      throw new HttpError(409, "vault_full", "This agent's vault holds the most items it may; delete some first.");
    case "stored":
      return json(entryJson(result.item));
  }
}

export async function getItem(request: IRequest, env: Env): Promise<Response> {
  const vaultKey = vaultKeyParam(request);
  const result = await (await agentVault(request, env)).get(vaultKey);
  switch (result.reason) {
    case "not_found":
      throw notFound("No vault item has that key.");
    case "found":
      const { vault_key, updated_at } = entryJson(result.item);
      return json({ vault_key, ciphertext: result.item.ciphertext, updated_at } satisfies VaultItemBody);
  }
}

export async function listItems(request: IRequest, env: Env): Promise<Response> {
  const items = await (await agentVault(request, env)).list();
  return json({ items: items.map(entryJson) } satisfies VaultListBody);
}

export async function deleteItem(request: IRequest, env: Env): Promise<Response> {
  const vaultKey = vaultKeyParam(request);
  await (await agentVault(request, env)).delete(vaultKey);
  return noContent();
}
