/** Messages between the services launcher and its child processes (over the IPC channel of `fork`). */
import type { ModuleName, ShopConfig } from '../config.js';

/** Launcher -> child. */
export type ToChild =
  /** Build `module`, listen, answer `listening`. */
  | { kind: 'host'; module: ModuleName; config: ShopConfig }
  /** Every module's base URL: fill the directory, start background work, answer `ready`. */
  | { kind: 'connect'; urls: Record<ModuleName, string> }
  /** Run the gateway with this configuration, answer `listening` then `ready`. */
  | { kind: 'gateway'; config: unknown }
  /** Drain, close, exit 0. */
  | { kind: 'stop' };

/** Child -> launcher. */
export type FromChild = { kind: 'listening'; url: string } | { kind: 'ready' } | { kind: 'failed'; error: string };
