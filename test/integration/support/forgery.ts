import { env } from "cloudflare:workers";
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { requestStub } from "../../../worker/stubs";
import { patchRequestRow } from "./request-row";

/**
 * Forges a real polling handle (worker/handles.ts: `<kind>.<user code>.<expiry>.<secret>.<tag>`) by
 * changing one character of its tag. The shape stays valid (the tag's first character carries no
 * padding bits), so only the MAC can tell it from the real one. The request's object is then made
 * to accept the forged tag as its own: a forgery is refused only if the worker checks the MAC
 * before it asks the object, so a test using this holds that check, not the object's second one.
 */
export async function forgeHandle(handle: string): Promise<string> {
  const cut = handle.lastIndexOf(".") + 1;
  const forged = handle.slice(0, cut) + (handle[cut] === "A" ? "B" : "A") + handle.slice(cut + 1);
  await requestAccepts(forged);
  return forged;
}

/** Makes the request's object take this handle's tag as its own, and reloads it from storage. */
export async function requestAccepts(handle: string): Promise<void> {
  const [, userCode] = handle.split(".");
  const stub = requestStub(env, userCode!);
  const tag = handle.slice(handle.lastIndexOf(".") + 1);
  await runInDurableObject(stub, (_instance, state) => patchRequestRow(state, { handle_tag: tag }));
  await evictDurableObject(stub);
}
