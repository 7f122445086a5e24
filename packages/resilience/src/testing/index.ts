/** Test support for code built on `@bulwark/resilience`: virtual time and seeded randomness. */
export { VirtualClock, flushMicrotasks } from './virtual-clock.js';
export { seededRandom } from '../seeded-random.js';
export { track, type Tracked } from './track.js';
