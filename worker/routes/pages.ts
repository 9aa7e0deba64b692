/**
 * The approval page and its static assets, served by the worker first so that every page carries
 * strict security headers (DESIGN.md, anti-phishing).
 */
import type { IRequest } from "itty-router";

export const PAGE_SECURITY_HEADERS: Record<string, string> = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "Referrer-Policy": "no-referrer",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
  "Cache-Control": "no-store",
};

async function fromAssets(env: Env, request: Request, path: string): Promise<Response> {
  const asset = await env.ASSETS.fetch(new Request(new URL(path, request.url), { method: request.method === "HEAD" ? "HEAD" : "GET" }));
  const response = new Response(asset.body, asset);
  for (const [name, value] of Object.entries(PAGE_SECURITY_HEADERS)) response.headers.set(name, value);
  response.headers.delete("ETag");
  return response;
}

/** `/approve`, with or without `?user_code=` or `#link=`: opening it never decides anything. */
export const approvePage = (request: IRequest, env: Env) => fromAssets(env, request, "/");

/** `/console`, with or without `#invite=`: the fragment never reaches the server. */
export const consolePage = (request: IRequest, env: Env) => fromAssets(env, request, "/console");

export const asset = (request: IRequest, env: Env) => fromAssets(env, request, new URL(request.url).pathname);

export const home = (request: IRequest) => Response.redirect(new URL("/approve", request.url).toString(), 302);
