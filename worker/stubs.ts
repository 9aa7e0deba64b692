/** Which Durable Object owns what (DESIGN.md): addressing in one place. */
export const requestStub = (env: Env, userCode: string) => env.REQUESTS.get(env.REQUESTS.idFromName(userCode));
export const accountStub = (env: Env, accountId: string) => env.ACCOUNTS.get(env.ACCOUNTS.idFromName(accountId));
export const vaultStub = (env: Env, agentId: string) => env.VAULTS.get(env.VAULTS.idFromName(agentId));
/** One per operator: named by account and operator, so only that operator's session ever reaches it. */
export const savedStub = (env: Env, accountId: string, operatorId: string) =>
  env.SAVED_CREDENTIALS.get(env.SAVED_CREDENTIALS.idFromName(`${accountId}/${operatorId}`));
