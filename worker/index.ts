import { handleRequest } from "./router";

export { RequestDO } from "../durable-objects/request-do";
export { AccountDO } from "../durable-objects/account-do";
export { VaultDO } from "../durable-objects/vault-do";

export default {
  fetch: handleRequest,
} satisfies ExportedHandler<Env>;
