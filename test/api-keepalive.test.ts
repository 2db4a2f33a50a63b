// Keep-alive on the real server (src/api/server.ts): an idle connection outlives Node's old 5 s
// keepAliveTimeout, so a client reusing it (undici keeps idle sockets 4 s, other clients longer) does
// not race the server closing it — which failed as "fetch failed (other side closed)" under load. And a
// graceful close still ends idle keep-alive connections at once instead of waiting them out.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { Socket } from 'node:net';
import { listen } from '../src/api/server.js';
import { PREFIX, tinyApi } from './helpers/api-app.js';

const { app } = await tinyApi();

/** GET on the agent; resolves with the status, the body and the socket it went over. */
function get(url: string, agent: http.Agent): Promise<{ status: number; body: string; socket: Socket; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body, socket: req.socket as Socket, reused: req.reusedSocket }));
    });
    req.on('error', reject);
  });
}

test('an idle keep-alive socket is still open past 5 s and serves the next request; close() ends it at once', { timeout: 30_000 }, async () => {
  const server = await listen(app, { port: 0, host: '127.0.0.1' });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const url = `${server.url}${PREFIX}/gemma3-tiny`;
    const first = await get(url, agent);
    assert.equal(first.status, 200, first.body);
    assert.equal(first.reused, false);
    let closedBy = '';
    first.socket.on('close', () => (closedBy ||= 'server'));
    // Idle well past Node's default keepAliveTimeout (5 s, whose timer fires a little late): the server must not have closed the socket.
    await new Promise((r) => setTimeout(r, 7_000));
    assert.equal(closedBy, '');
    const second = await get(url, agent);
    assert.equal(second.status, 200, second.body);
    assert.equal(second.socket, first.socket);
    assert.equal(second.reused, true);
    // Graceful shutdown with a long deadline: close() resolves only once every connection is gone, so
    // it returning (well inside the test's timeout) shows the idle socket was closed, not waited out.
    // (The agent unrefs its idle sockets; ref it so the process waits for the server's FIN.)
    const socketClosed = new Promise<void>((r) => (first.socket.destroyed ? r() : first.socket.ref().once('close', () => r())));
    await server.close(60_000);
    await socketClosed;
    assert.equal(closedBy, 'server');
  } finally {
    agent.destroy();
    await server.close();
  }
});
