// A loopback HTTP proxy in front of `wrangler dev` that loses the first delivering answer: the
// server delivers a credential and the agent never hears of it (a dropped connection, a proxy timeout).
import { request as httpRequest, createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";

export interface DroppingProxy {
  url: string;
  /** Every exchange, in order: the path and the status passed on, or "dropped". */
  log: Array<{ method: string; path: string; status: number | "dropped" }>;
  close(): Promise<void>;
}

const readAll = async (stream: IncomingMessage) => {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

/**
 * Forwards every request to `target` with its `Host` kept, so DPoP proofs signed for the proxy's URL
 * still match (RFC 9449 §4.3: `htu`). The first 200 of `POST /v1/credentials/poll` is read from the
 * server and then the agent's connection is destroyed instead; `onDrop` runs before that (e.g. to
 * crash and restart the server while the agent still waits on its answer).
 */
export async function startDroppingProxy(target: string, onDrop: () => Promise<void> = async () => {}): Promise<DroppingProxy> {
  const upstream = new URL(target);
  const log: DroppingProxy["log"] = [];
  let dropped = false;
  const server = createServer(async (req, res) => {
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    try {
      const body = await readAll(req);
      const answer = await new Promise<{ status: number; headers: IncomingMessage["headers"]; body: Buffer }>((done, fail) => {
        const out = httpRequest({ host: upstream.hostname, port: upstream.port, method, path, headers: req.headers }, async (response) => {
          done({ status: response.statusCode ?? 502, headers: response.headers, body: await readAll(response) });
        });
        out.on("error", fail);
        out.end(body);
      });
      if (!dropped && method === "POST" && path === "/v1/credentials/poll" && answer.status === 200) {
        dropped = true;
        log.push({ method, path, status: "dropped" });
        await onDrop();
        req.socket.destroy();
        return;
      }
      log.push({ method, path, status: answer.status });
      res.writeHead(answer.status, answer.headers);
      res.end(answer.body);
    } catch {
      log.push({ method, path, status: 502 });
      res.writeHead(502, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "server_error", error_description: "the proxy could not reach the server" }));
    }
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
