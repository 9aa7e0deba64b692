/**
 * One-touch approval with a saved credential (README, "Saved credentials"). The typed path's
 * challenge commits to the SHA-256 of the exact `credential_jwe` sent; here the browser can only make
 * that JWE after the assertion (its PRF output opens the item), so the challenge instead commits to
 * the saved item the server holds: its name, passkey, PRF input and ciphertext. At decide the
 * commitment is computed again from the item as it is then, so an item replaced after the challenge
 * is refused, and the assertion must come from the item's own passkey.
 */
import { z } from "zod";
import type { ConsoleSession } from "./console/session";
import { HttpError, badRequest, notFound } from "./errors";
import { sha256 } from "./hashing";
import {
  challengeFieldsSchema,
  decideFieldsShape,
  decideRequest,
  issueDecisionChallenge,
  refineDecision,
  type DecisionTarget,
} from "./passkey-decision";
import { vaultKeySchema } from "./schemas";
import { savedStub } from "./stubs";
import type { SavedItem } from "../durable-objects/saved/saved-credentials-do";

const saved = vaultKeySchema.optional();

/** The console's challenge body: the typed path's, or `{decision: "approve", saved: <name>}`. */
export const consoleChallengeSchema = challengeFieldsSchema.extend({ saved });
/** The console's decide body: the typed path's, plus `saved` naming the item the challenge committed to. */
export const consoleDecideSchema = z.object({ ...decideFieldsShape, saved }).superRefine(refineDecision);

/** What the request being approved is for: a saved item must carry its vault key's name. */
export interface SavedApprovalTarget {
  target: DecisionTarget;
  vaultKey: string;
}

/** The digest a saved approval's challenge commits to: base64url SHA-256 over the item (names and IDs hold no newline). */
export function savedCommitment(item: SavedItem): Promise<string> {
  return sha256(["keyferry saved approval v1", item.name, item.passkeyId, item.prfSalt, item.jwe].join("\n"));
}

async function savedItem(env: Env, session: ConsoleSession, request: SavedApprovalTarget, name: string): Promise<SavedItem> {
  if (name !== request.vaultKey) throw badRequest("saved: must name the saved credential of the request's vault_key");
  const found = await savedStub(env, session.accountId, session.operator.operatorId).get(name);
  if (found.reason === "not_found") throw notFound("You have no saved credential of that name.");
  return found.item;
}

export async function issueSavedChallenge(
  env: Env,
  request: Request,
  session: ConsoleSession,
  pending: SavedApprovalTarget,
  body: z.infer<typeof consoleChallengeSchema> & { saved: string },
): Promise<Response> {
  if (body.decision !== "approve") throw badRequest("saved: only an approval uses a saved credential");
  if (body.payload_sha256 !== undefined) throw badRequest("payload_sha256: a saved approval commits to the saved item; send saved alone");
  const item = await savedItem(env, session, pending, body.saved);
  return issueDecisionChallenge(env, request, pending.target, { decision: "approve", payload_sha256: await savedCommitment(item) }, item.passkeyId);
}

export async function decideSaved(
  env: Env,
  request: Request,
  session: ConsoleSession,
  pending: SavedApprovalTarget,
  body: z.infer<typeof consoleDecideSchema> & { saved: string },
): Promise<Response> {
  if (body.decision !== "approve" || body.credential_jwe === undefined) throw badRequest("credential_jwe: a saved approval sends the opened item encrypted in the browser");
  const item = await savedItem(env, session, pending, body.saved);
  // The item opens only with its own passkey's PRF output: an assertion by another one did not open it.
  if (body.webauthn !== undefined && body.webauthn.id !== item.passkeyId) {
    throw new HttpError(403, "access_denied", "A saved approval is signed by the passkey that sealed the item.");
  }
  return decideRequest(env, request, pending.target, body, await savedCommitment(item));
}
