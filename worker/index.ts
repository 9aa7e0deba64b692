import { handleRequest } from "./router";

export { RequestDO } from "../durable-objects/request/request-do";
export { AccountDO } from "../durable-objects/account/account-do";
export { VaultDO } from "../durable-objects/vault/vault-do";
export { DpopJtiDO } from "../durable-objects/dpop/dpop-jti-do";
export { SavedCredentialsDO } from "../durable-objects/saved/saved-credentials-do";

export default {
  fetch: handleRequest,
} satisfies ExportedHandler<Env>;
