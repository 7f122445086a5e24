/**
 * Records how a promise settles, without awaiting it: for tests that advance
 * virtual time and then look at a call's outcome.
 *
 * @example
 * ```ts
 * const state = track(policy.execute(slowCall));
 * await clock.advance(100);
 * assert.ok(state.error instanceof TimeoutError);
 * ```
 */
export interface Tracked<T> {
  settled: boolean;
  value: T | undefined;
  error: unknown;
  /** Resolves (never rejects) once the promise settled and the fields above are set. */
  done: Promise<void>;
}

export function track<T>(promise: Promise<T>): Tracked<T> {
  const state: Tracked<T> = { settled: false, value: undefined, error: undefined, done: Promise.resolve() };
  state.done = promise.then(
    (value) => {
      state.settled = true;
      state.value = value;
    },
    (error: unknown) => {
      state.settled = true;
      state.error = error;
    },
  );
  return state;
}
