/**
 * How the RequestDO runs a poll's or a wait's transition when a DPoP proof is involved: where the
 * transition answers `check_jti` (a proof by the request's bound key that passed every other check),
 * the key's DpopJtiDO is asked whether the `jti` was seen (RFC 9449 §11.1: across requests), and the
 * transition runs again on the request as it is after that call, so a poll that raced it is judged
 * anew. Only such a proof reaches the key's object: a forged handle, another key or an unbound
 * request never creates one.
 */
import type { Transition } from "../../core/request-state";
import type { PollProof, RequestRecord } from "./request-types";

export type ProofInput = { jkt: string; jtiSeen: boolean | null } | null;

export async function judgeWithProof<A extends { reason: string }>(
  env: Env,
  current: () => RequestRecord | null,
  proof: PollProof | null,
  step: (record: RequestRecord, dpop: ProofInput, now: number) => Transition<A>,
): Promise<(Transition<A> & { record: RequestRecord; now: number }) | null> {
  const record = current();
  if (!record) return null;
  const now = Date.now();
  const first = step(record, proof && { jkt: proof.jkt, jtiSeen: null }, now);
  if (first.answer.reason !== "check_jti" || !proof) return { ...first, record, now };
  const jtiSeen = await env.DPOP_JTIS.get(env.DPOP_JTIS.idFromName(proof.jkt)).seen(proof.jti, proof.until);
  const after = current();
  if (!after) return null;
  const later = Date.now();
  return { ...step(after, { jkt: proof.jkt, jtiSeen }, later), record: after, now: later };
}
