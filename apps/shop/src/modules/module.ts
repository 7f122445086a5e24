/** The shape every module has, and what the composition root hands it. */
import type { FastifyInstance } from 'fastify';
import type { JwtVerifier } from '@bulwark/http/auth';
import type { Transport } from '@bulwark/messaging';
import type { ModuleName, ShopConfig } from '../config.js';
import type { Directory } from '../platform.js';
import type { SagaEventSource } from '@bulwark/telemetry';

export interface ModuleContext {
  config: ShopConfig;
  directory: Directory;
  /** Verifies users' access tokens (JWKS of the users module, fetched over HTTP). */
  verifier: JwtVerifier;
  /** The message transport (embedded bus in the monolith). */
  transport: Transport;
}

export interface ShopModule {
  readonly name: ModuleName;
  /** Its routes, mounted at `/api/<name>` in an encapsulated context. */
  routes(app: FastifyInstance): void | Promise<void>;
  /** Background work, started once every module listens (relays, consumers, sweepers, the orchestrator). */
  start?(): void | Promise<void>;
  /** Stops background work and closes the store. */
  close(): Promise<void>;
  /** A readiness check (its store answers). */
  ready?(): Promise<unknown>;
  /** Saga events, for telemetry. */
  sagas?: SagaEventSource;
}

/** The mount point of a module's routes. */
export function prefixOf(name: ModuleName): string {
  return name === 'productPage' ? '/api/product-page' : `/api/${name}`;
}
