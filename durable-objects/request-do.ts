import { DurableObject } from "cloudflare:workers";
export class RequestDO extends DurableObject<Env> {}
