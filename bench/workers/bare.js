// Ceiling: the cheapest possible answer on this runtime, a small JSON.
const BODY = JSON.stringify({ ok: true, service: "bare" });

export default {
  fetch() {
    return new Response(BODY, { headers: { "Content-Type": "application/json", "Cache-Control": "no-store" } });
  },
};
