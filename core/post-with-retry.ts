/** Delays between attempts at an outbound POST: three tries in about seven seconds. */
export const RETRY_DELAYS_MS = [0, 2_000, 5_000];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * POSTs until a 2xx, backing off between attempts; 4xx other than 408/429 is final.
 * Never throws: the caller logs and audits the outcome (notifications fail soft).
 */
export async function postWithRetry(
  url: string,
  init: () => Promise<RequestInit>,
  delays: readonly number[] = RETRY_DELAYS_MS,
): Promise<{ ok: boolean; attempts: number; status: number | null }> {
  let status: number | null = null;
  for (let attempt = 0; attempt < delays.length; attempt++) {
    if (delays[attempt]! > 0) await sleep(delays[attempt]!);
    try {
      const response = await fetch(url, { method: "POST", redirect: "manual", ...(await init()) });
      status = response.status;
      await response.body?.cancel();
      if (response.ok) return { ok: true, attempts: attempt + 1, status };
      if (status >= 400 && status < 500 && status !== 408 && status !== 429) return { ok: false, attempts: attempt + 1, status };
    } catch {
      status = null;
    }
  }
  return { ok: false, attempts: delays.length, status };
}
