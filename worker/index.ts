import router from "./router";

export { RequestDO } from "../durable-objects/request-do";
export { AccountDO } from "../durable-objects/account-do";
export { VaultDO } from "../durable-objects/vault-do";

export default {
  fetch: (request, env, ctx) => router.fetch(request, env, ctx),
} satisfies ExportedHandler<Env>;
