// The API app behind a socket: @hono/node-server adapts Node's http server to the app's
// Request -> Response function. Resolves once listening, with the URL clients should use.
// close() is a graceful stop: no new connections, idle keep-alive connections closed at once, requests
// in flight given until the deadline to finish, then every connection is cut.

import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createAdaptorServer } from '@hono/node-server';
import type { Hono } from 'hono';

export interface RunningServer {
  url: string;
  port: number;
  /** Stops accepting, waits up to `deadlineMs` (default 0) for requests in flight, then cuts the rest. */
  close(deadlineMs?: number): Promise<void>;
}

export function listen(app: Hono, opts: { port: number; host: string }): Promise<RunningServer> {
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  // Idle keep-alive connections are closed by the client, not by the server: with Node's 5 s default a
  // client (undici keeps idle sockets 4 s) can send a request on a socket the server is closing, which
  // fails as "other side closed" (seen under load in the soak test).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      const { port } = server.address() as AddressInfo;
      const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
      resolve({
        url: `http://${host}:${port}`,
        port,
        close: (deadlineMs = 0) => new Promise<void>((done) => {
          const cut = setTimeout(() => server.closeAllConnections(), deadlineMs);
          server.close(() => {
            clearTimeout(cut);
            done();
          });
          server.closeIdleConnections();
          // Connections that finish their response while closing are ended instead of kept alive.
          server.on('request', (_req, res) => res.setHeader('connection', 'close'));
          if (deadlineMs <= 0) server.closeAllConnections();
        }),
      });
    });
  });
}
