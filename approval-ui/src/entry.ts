import { formatUserCode, normalizeUserCode } from "../../core/user-code";
import type { Entry } from "./state";

/**
 * How the page was opened. An approval link carries its token in the URL fragment
 * (`/approve#link=…`), which browsers never send to a server or put in a `Referer`; the page reads
 * it once and drops it from the address bar and history, so a shared screen or a later visit does
 * not show it. `?user_code=` (verification_uri_complete, RFC 8628 §3.3.1) prefills.
 */
export function readEntry(location: Location, history: History): { entry: Entry; prefill: string } {
  const query = new URLSearchParams(location.search);
  const fragment = new URLSearchParams(location.hash.slice(1));
  const token = fragment.get("link");
  if (token !== null) {
    const search = query.toString();
    history.replaceState(null, "", `${location.pathname}${search ? `?${search}` : ""}`);
  }
  const raw = query.get("user_code") ?? "";
  const code = normalizeUserCode(raw);
  const prefill = code ? formatUserCode(code) : raw.slice(0, 16);
  return { entry: token ? { kind: "link", token } : { kind: "code" }, prefill };
}
