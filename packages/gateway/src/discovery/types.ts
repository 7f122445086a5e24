/**
 * Discovery: where an upstream service's instances come from. A source
 * reports the full current list whenever it changes; the upstream layer keeps
 * each instance's health and balancing state across updates by instance id.
 */
import type { Instance } from '../balancing/types.js';

export interface DiscoverySource {
  /**
   * Starts discovery. `update` receives the full list of live instances each
   * time it may have changed (repeating an unchanged list is fine). The
   * returned promise settles after the first list was delivered (or the first
   * attempt failed, reported through `onError`).
   */
  start(update: (instances: readonly Instance[]) => void, onError: (error: unknown) => void): Promise<void>;
  /** Stops polling. */
  close(): Promise<void>;
}

/** A static instance: a URL, or a URL with a weight, id and labels. */
export type StaticInstance =
  | string
  | {
      readonly url: string;
      /** Default: the URL. */
      readonly id?: string;
      /** Default 1. */
      readonly weight?: number;
      readonly metadata?: Readonly<Record<string, string>>;
    };
