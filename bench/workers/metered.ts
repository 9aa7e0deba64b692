/**
 * The Keyferry worker with the cost meter (bench/cost-meter.ts) around it, for bench/cost-per-handoff.ts
 * only: the same classes and handler, plus `POST /__bench/meters` (start counting) and
 * `GET /__bench/meters` (stop, and read what was counted). Never deployed.
 */
import worker, { AccountDO as AccountBase, RequestDO as RequestBase, VaultDO } from "../../worker/index.ts";
import { CostMeter } from "../cost-meter.ts";

const meter = new CostMeter();
meter.pause();
meter.meterClass(RequestBase.prototype);
meter.meterClass(AccountBase.prototype);
let workerRequests = 0;
let counting = false;

export class RequestDO extends RequestBase {
  constructor(ctx: DurableObjectState, env: Env) {
    meter.meterStorage(ctx.storage);
    super(ctx, env);
  }
}

export class AccountDO extends AccountBase {
  constructor(ctx: DurableObjectState, env: Env) {
    meter.meterStorage(ctx.storage);
    super(ctx, env);
  }
}

export { VaultDO };

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    if (new URL(request.url).pathname === "/__bench/meters") {
      if (request.method === "POST") {
        meter.reset();
        workerRequests = 0;
        counting = true;
        return new Response(null, { status: 204 });
      }
      meter.pause();
      counting = false;
      const { calls: _calls, ...meters } = meter.read();
      return Response.json({ ...meters, workerRequests });
    }
    if (counting) workerRequests++;
    return worker.fetch(request, env, ctx);
  },
};
