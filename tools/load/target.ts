/**
 * The load generator only ever talks to this machine: a target's host is
 * resolved before any request and refused unless every address it resolves
 * to is loopback (127.0.0.0/8, ::1, IPv4-mapped ::ffff:127.x.y.z). The
 * connection is then pinned to the checked address, so a name cannot resolve
 * to something else between the check and the first connect.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** The target is not loopback, not http(s), or not a URL at all. Thrown before anything is sent. */
export class LoadTargetError extends Error {
  constructor(
    readonly target: string,
    reason: string,
  ) {
    super(`load target ${JSON.stringify(target)} refused: ${reason} (the load generator only drives loopback targets)`);
    this.name = 'LoadTargetError';
  }
}

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (`::ffff:127.0.0.1`, `::ffff:7f00:1`). */
export function isLoopbackAddress(address: string): boolean {
  const a = address.replace(/^\[|\]$/g, '');
  const family = isIP(a);
  if (family === 4) return a.split('.')[0] === '127';
  if (family !== 6) return false;
  // The WHATWG URL parser writes an IPv6 address in its canonical compressed form:
  // `0:0:0:0:0:0:0:1` -> `::1`, `::ffff:127.0.0.1` -> `::ffff:7f00:1`.
  const canonical = new URL(`http://[${a}]/`).hostname.slice(1, -1);
  if (canonical === '::1') return true;
  const mapped = /^::ffff:([0-9a-f]{1,4}):[0-9a-f]{1,4}$/.exec(canonical);
  return mapped !== null && parseInt(mapped[1] ?? '0', 16) >> 8 === 0x7f;
}

export interface CheckedTarget {
  /** The origin as given (scheme, host, port), e.g. `http://localhost:3000`. */
  origin: string;
  /** The loopback addresses the host resolved to, in resolver order; connections go to these only. */
  addresses: { address: string; family: 4 | 6 }[];
  /** The host was an IP address (nothing to resolve or pin). */
  literal: boolean;
}

/** Parses and resolves `target`; throws LoadTargetError unless it is an http(s) origin on loopback. */
export async function checkTarget(target: string): Promise<CheckedTarget> {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new LoadTargetError(target, 'not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new LoadTargetError(target, `scheme ${url.protocol} (http or https only)`);
  if (url.username !== '' || url.password !== '') throw new LoadTargetError(target, 'credentials in the URL');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: { address: string; family: number }[];
  if (isIP(host) !== 0) {
    addresses = [{ address: host, family: isIP(host) }];
  } else {
    try {
      addresses = await lookup(host, { all: true, verbatim: true });
    } catch (error) {
      throw new LoadTargetError(target, `host ${host} does not resolve (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
  }
  const outside = addresses.filter((a) => !isLoopbackAddress(a.address));
  if (addresses.length === 0 || outside.length > 0) {
    const shown = addresses.map((a) => a.address).join(', ') || 'nothing';
    throw new LoadTargetError(target, isIP(host) !== 0 ? `${host} is not a loopback address` : `host ${host} resolves to ${shown}, not loopback`);
  }
  return {
    origin: url.origin,
    addresses: addresses.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 })),
    literal: isIP(host) !== 0,
  };
}
