/**
 * What the gateway sends upstream: the forwarded request head, built once
 * per exchange as one `latin1` string (only the deadline field, and the Host
 * when it is not preserved, are appended per attempt), and what it derives
 * from a client connection once and reuses for each request on it.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { randomFillSync } from 'node:crypto';
import { DEADLINE_HEADER } from '@bulwark/resilience';
import type { TokenEntry, VerifiedTokenCache } from './token-cache.js';

/** Request headers never forwarded (hop-by-hop, RFC 9110 §7.6.1, and the deadline, which is re-issued). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'expect', 'http2-settings', DEADLINE_HEADER]);
const FORWARDED_HEADERS = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded']);
const TRACEPARENT = /^[\da-f]{2}-[\da-f]{32}-[\da-f]{16}-[\da-f]{2}$/;
const VALID_HOST = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.?|\[[0-9a-f:.]+\])(?::\d{1,5})?$/;

// Trace ids for requests that arrive without a traceparent: cut from a block of random hex.
const RANDOM_BYTES = Buffer.alloc(3072);
let randomHex = '';
let randomOffset = 0;
/** `00-<32 hex>-<16 hex>-01` from fresh random bytes. */
function newTraceparent(): string {
  if (randomOffset + 48 > randomHex.length) {
    randomFillSync(RANDOM_BYTES);
    randomHex = RANDOM_BYTES.toString('hex');
    randomOffset = 0;
  }
  const at = randomOffset;
  randomOffset += 48;
  return `00-${randomHex.slice(at, at + 32)}-${randomHex.slice(at + 32, at + 48)}-01`;
}

/** Lowercase host name without port, or `undefined` when the Host header is malformed. Cached per distinct value. */
const hostCache = new Map<string, string>();
export function hostOf(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const cached = hostCache.get(raw);
  if (cached !== undefined) return cached;
  const lower = raw.toLowerCase();
  if (lower.length > 255 || !VALID_HOST.test(lower)) return undefined;
  let host = lower;
  if (host.startsWith('[')) host = host.slice(0, host.indexOf(']') + 1);
  else {
    const colon = host.indexOf(':');
    if (colon !== -1) host = host.slice(0, colon);
    if (host.endsWith('.')) host = host.slice(0, -1);
  }
  if (hostCache.size >= 1024) hostCache.clear();
  hostCache.set(raw, host);
  return host;
}

const kConn = Symbol('bulwark.gateway.conn');

/**
 * What the gateway derives from a client connection once and reuses for each
 * request on it (keep-alive): the peer address and scheme, the forwarding
 * fields, the last verified token, the last rate-limit key. The strings are
 * the same objects request after request, so the maps they key hash them once.
 */
export class ConnInfo {
  readonly ip: string;
  readonly proto: 'http' | 'https';
  /** The `for=` node of a `Forwarded` element (IPv6 quoted and bracketed). */
  readonly forNode: string;
  private fwdHost: string | undefined = undefined;
  private fwdElement = '';
  private blockHostHeader: string | undefined = undefined;
  private blockHost: string | undefined = undefined;
  private block = '';
  authHeader: string | undefined = undefined;
  authEntry: TokenEntry | undefined = undefined;
  authCache: VerifiedTokenCache | undefined = undefined;
  authGeneration = 0;
  private limPrefix: string | undefined = undefined;
  private limIdentity: string | undefined = undefined;
  private limKey = '';

  constructor(socket: Socket) {
    this.ip = socket.remoteAddress ?? 'unknown';
    this.proto = (socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http';
    this.forNode = this.ip.includes(':') ? `"[${this.ip}]"` : this.ip;
  }

  /** `for=<ip>;host="<host>";proto=<proto>`, rebuilt only when the host changes. */
  forwarded(host: string): string {
    if (this.fwdHost !== host) {
      this.fwdHost = host;
      this.fwdElement = `for=${this.forNode};host="${host}";proto=${this.proto}`;
    }
    return this.fwdElement;
  }

  /** The replacing `X-Forwarded-*` and `Forwarded` fields (untrusted client values), rebuilt only when the Host changes. */
  forwardingFields(hostHeader: string, host: string): string {
    if (this.blockHostHeader !== hostHeader || this.blockHost !== host) {
      this.blockHostHeader = hostHeader;
      this.blockHost = host;
      this.block = `x-forwarded-for: ${this.ip}\r\nx-forwarded-proto: ${this.proto}\r\nx-forwarded-host: ${hostHeader}\r\nforwarded: ${this.forwarded(host)}\r\n`;
    }
    return this.block;
  }

  /** The rate-limit store key `prefix + identity`, the same string object while both stay the same. */
  limitKey(prefix: string, identity: string): string {
    if (this.limPrefix !== prefix || this.limIdentity !== identity) {
      this.limPrefix = prefix;
      this.limIdentity = identity;
      this.limKey = prefix + identity;
    }
    return this.limKey;
  }
}

export function connOf(req: IncomingMessage): ConnInfo {
  const socket = req.socket as Socket & { [kConn]?: ConnInfo };
  return (socket[kConn] ??= new ConnInfo(socket));
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * The forwarded request head without its last fields (per attempt: `host`
 * when not preserved, the deadline, the empty line): request line, the
 * client's end-to-end fields as Node merged them (first of a repeated Host or
 * Authorization, cookies joined), `X-Forwarded-*` / `Forwarded` (replaced, or
 * appended to when `trust`), a valid `traceparent` (generated when missing or
 * invalid), and `transfer-encoding: chunked` when the body's length is unknown.
 */
export function forwardHead(req: IncomingMessage, path: string, conn: ConnInfo, host: string, trust: boolean, preserveHost: boolean, chunked: boolean): string {
  const incoming = req.headers;
  let head = `${req.method!} ${path} HTTP/1.1\r\n`;
  let extraHop: string[] | undefined;
  const connection = incoming.connection;
  if (connection !== undefined && connection.length > 10) {
    extraHop = connection
      .toLowerCase()
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '' && s !== 'keep-alive' && s !== 'close');
  }
  let sawTrace = false;
  for (const name in incoming) {
    if (HOP_BY_HOP.has(name)) continue;
    if (FORWARDED_HEADERS.has(name) && (!trust || name === 'x-forwarded-for' || name === 'forwarded')) continue;
    if (extraHop !== undefined && extraHop.includes(name)) continue;
    if (name === 'host' && !preserveHost) continue;
    const value = incoming[name];
    if (value === undefined) continue;
    if (name === 'traceparent') {
      if (typeof value !== 'string' || !TRACEPARENT.test(value) || value.startsWith('ff')) continue;
      sawTrace = true;
    }
    if (typeof value === 'string') head += `${name}: ${value}\r\n`;
    else for (const v of value) head += `${name}: ${v}\r\n`;
  }
  const hostHeader = incoming.host;
  if (!trust) {
    if (hostHeader !== undefined) head += conn.forwardingFields(hostHeader, host);
    else head += `x-forwarded-for: ${conn.ip}\r\nx-forwarded-proto: ${conn.proto}\r\nforwarded: ${conn.forwarded(host)}\r\n`;
  } else {
    const xffRaw = incoming['x-forwarded-for'];
    const xff = Array.isArray(xffRaw) ? xffRaw.join(', ') : xffRaw;
    const fwd = incoming.forwarded;
    const element = conn.forwarded(host);
    head += `x-forwarded-for: ${xff === undefined ? conn.ip : `${xff}, ${conn.ip}`}\r\nforwarded: ${fwd === undefined ? element : `${fwd}, ${element}`}\r\n`;
    if (incoming['x-forwarded-proto'] === undefined) head += `x-forwarded-proto: ${conn.proto}\r\n`;
    if (incoming['x-forwarded-host'] === undefined && hostHeader !== undefined) head += `x-forwarded-host: ${hostHeader}\r\n`;
  }
  if (!sawTrace) head += `traceparent: ${newTraceparent()}\r\n`;
  if (chunked) head += 'transfer-encoding: chunked\r\n';
  return head;
}

/** The last fields and the end of the head, per attempt. */
export function finishHead(head: string, hostLine: string, remainingMs: number): string {
  return `${head}${hostLine}${DEADLINE_HEADER}: ${Math.floor(remainingMs)}\r\n\r\n`;
}
