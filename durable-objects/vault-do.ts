import { DurableObject } from "cloudflare:workers";
export class VaultDO extends DurableObject<Env> {}
