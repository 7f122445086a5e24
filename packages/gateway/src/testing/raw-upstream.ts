/**
 * A raw upstream for tests of the gateway's HTTP/1.1 client: a `net` server
 * that hands each request head to the test, which writes exactly the bytes
 * it wants back (malformed, split, delayed, cut). A request body announced
 * with `Content-Length` is read and dropped; chunked request bodies are not
 * supported.
 */
import { createServer, type AddressInfo, type Socket } from 'node:net';

export interface RawUpstream {
  readonly url: string;
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections closed so far. */
  readonly closed: number;
  /** Requests seen so far. */
  readonly requests: number;
  readonly sockets: readonly Socket[];
  /** Resolves once `n` connections in total have closed. */
  closedCount(n: number): Promise<void>;
  close(): Promise<void>;
}

/** `onRequest(socket, head, n)`: `head` is the request head (latin1, up to the empty line), `n` counts requests from 0. */
export async function startRawUpstream(onRequest: (socket: Socket, head: string, n: number) => void): Promise<RawUpstream> {
  let accepted = 0;
  let closed = 0;
  let requests = 0;
  const sockets: Socket[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const server = createServer((socket) => {
    accepted++;
    sockets.push(socket);
    let buffered = '';
    let skip = 0;
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      buffered += d;
      for (;;) {
        if (skip > 0) {
          const n = Math.min(skip, buffered.length);
          skip -= n;
          buffered = buffered.slice(n);
          if (skip > 0) return;
        }
        const end = buffered.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buffered.slice(0, end + 4);
        buffered = buffered.slice(end + 4);
        const length = /\r\ncontent-length: *(\d+)/i.exec(head);
        if (length !== null) skip = Number(length[1]);
        onRequest(socket, head, requests++);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed++;
      for (const w of waiters.filter((x) => closed >= x.n)) w.resolve();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get accepted() {
      return accepted;
    },
    get closed() {
      return closed;
    },
    get requests() {
      return requests;
    },
    sockets,
    closedCount: (n) => (closed >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
