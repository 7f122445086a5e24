/**
 * The module-logger registry behind `logger.modules`: one child logger per
 * module (`module` field on each line), whose level an operator can change at
 * runtime without a restart.
 *
 * A module without a level of its own follows the root level, also when the
 * root level changes later.
 */
import type { Logger } from 'pino';
import { InvalidLogLevelError, UnknownLogModuleError, requireName } from '../errors.js';

/** pino's levels, plus `silent`. */
export const LOG_LEVELS: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** The name that addresses the root logger in `setLevel` and the admin route. */
export const ROOT_MODULE = 'root';

/** The levels now in force. */
export interface LevelSnapshot {
  root: string;
  /** Each module's level, and whether it was set for that module (else it follows root). */
  modules: Record<string, { level: string; own: boolean }>;
}

export class LogLevels {
  private readonly children = new Map<string, { logger: Logger; own: boolean }>();

  constructor(
    private readonly root: Logger,
    private readonly failureCount: { count: number },
  ) {}

  /** Log lines lost to a failing serializer or destination since start. */
  get failures(): number {
    return this.failureCount.count;
  }

  /** The child logger of `module` (created on first use). */
  get(module: string, bindings: Record<string, unknown> = {}): Logger {
    requireName('logger.modules', 'module', module);
    const existing = this.children.get(module);
    if (existing !== undefined) return existing.logger;
    const logger = this.root.child({ ...bindings, module });
    this.children.set(module, { logger, own: false });
    return logger;
  }

  /** The module names registered. */
  names(): string[] {
    return [...this.children.keys()];
  }

  /**
   * Sets the level of `module` (or of the root with `"root"`, which also moves
   * every module that has no level of its own). `null` makes a module follow
   * the root again. Throws `InvalidLogLevelError` or `UnknownLogModuleError`.
   */
  setLevel(module: string, level: string | null): void {
    if (level !== null && (typeof level !== 'string' || !LOG_LEVELS.includes(level))) throw new InvalidLogLevelError(level, LOG_LEVELS);
    if (module === ROOT_MODULE) {
      if (level === null) throw new InvalidLogLevelError(level, LOG_LEVELS);
      this.root.level = level;
      for (const child of this.children.values()) if (!child.own) child.logger.level = level;
      return;
    }
    const child = this.children.get(module);
    if (child === undefined) throw new UnknownLogModuleError(module);
    child.own = level !== null;
    child.logger.level = (level ?? this.root.level);
  }

  /** The levels in force. */
  snapshot(): LevelSnapshot {
    const modules: LevelSnapshot['modules'] = {};
    for (const [name, child] of this.children) modules[name] = { level: child.logger.level, own: child.own };
    return { root: this.root.level, modules };
  }
}
