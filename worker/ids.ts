/** Lower-case base32 without look-alikes: readable, URL- and header-safe identifiers. */
const ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789";

function randomId(prefix: string, length = 20): string {
  let id = "";
  for (const byte of crypto.getRandomValues(new Uint8Array(length))) id += ID_ALPHABET[byte % ID_ALPHABET.length];
  return `${prefix}_${id}`;
}

export const newAccountId = () => randomId("acc");
export const newAgentId = () => randomId("agt");
export const newRequestId = () => randomId("req");
export const newOperatorId = () => randomId("opr");

const ID_PATTERN = (prefix: string) => new RegExp(`^${prefix}_[${ID_ALPHABET}]{20}$`);
export const isAccountId = (value: string) => ID_PATTERN("acc").test(value);
export const isAgentId = (value: string) => ID_PATTERN("agt").test(value);
export const isOperatorId = (value: string) => ID_PATTERN("opr").test(value);
export const isRequestId = (value: string) => ID_PATTERN("req").test(value);
export const newPushSubscriptionId = () => randomId("psb");
export const isPushSubscriptionId = (value: string) => ID_PATTERN("psb").test(value);
