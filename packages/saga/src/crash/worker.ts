/**
 * The process the saga crash and takeover tests run and SIGKILL. It opens an
 * orchestrator (which at once claims sagas whose lease expired: the ones a
 * killed predecessor was driving), then, when told to, starts sagas
 * 0..count-1 with their fixed ids — a start whose id exists returns the
 * existing saga and drives nothing, so a restart never starts a saga twice.
 * Optionally it reports lease takeovers and settlements as JSON lines, and
 * exits 0 once every saga is settled.
 *
 * argv[2]: JSON `WorkerConfig`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SagaOrchestrator } from '../orchestrator.js';
import { Ledger } from '../testing/ledger.js';
import { crashSaga, openLedgerStore, openSagaStore, sagaId, settledOf, stateCounts, type WorkerConfig, type WorkerEvent } from './fixture.js';

const config = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
const store = await openSagaStore(config, 5);
const ledgerStore = await openLedgerStore(config, 5);
let owner = '';
const pause = config.pause.kind === 'random' ? ((max: number) => () => Math.floor(Math.random() * (max + 1)))(config.pause.maxMs) : (n: number) => 20 + (n % 8) * 15;
const saga = crashSaga({ ledger: new Ledger(ledgerStore), owner: () => owner, pause });
const orchestrator = new SagaOrchestrator({
  store,
  sagas: [saga],
  leaseMs: config.leaseMs,
  pollIntervalMs: config.pollIntervalMs,
  maxConcurrent: config.maxConcurrent,
  maintenanceIntervalMs: 1_000,
  ...(config.owner === undefined ? {} : { owner: config.owner }),
});
owner = orchestrator.owner;
const report = (e: WorkerEvent): void => void process.stdout.write(`${JSON.stringify(e)}\n`);
if (config.report) {
  orchestrator.on('lease-taken', (e) => report({ event: 'lease-taken', sagaId: e.sagaId, owner, epoch: e.epoch }));
  orchestrator.on('completed', (e) => report({ event: 'completed', sagaId: e.sagaId, owner }));
  orchestrator.on('compensated', (e) => report({ event: 'compensated', sagaId: e.sagaId, owner }));
}
orchestrator.on('error', (e) => process.stderr.write(`orchestrator error in ${e.where}: ${String(e.error)}\n`));
await orchestrator.open();
process.stdout.write('ready\n');

if (config.start) {
  const handles = await Promise.all(Array.from({ length: config.count }, (_, n) => orchestrator.start(saga, { n }, { id: sagaId(n) })));
  const existing = handles.filter((h) => h.existing).length;
  process.stdout.write(`started ${config.count - existing} new, ${existing} existing\n`);
  process.stdout.write('started\n');
}

if (config.exitWhenDone) {
  for (;;) {
    const counts = await stateCounts(store);
    if (settledOf(counts) >= config.count) break;
    await sleep(50);
  }
  await orchestrator.close({ drainMs: 1_000 });
  await ledgerStore.close();
  await store.close();
  process.stdout.write('done\n');
  process.exit(0);
} else {
  // Runs until the test kills it (or stops it with SIGTERM).
  const alive = setInterval(() => undefined, 60_000);
  process.once('SIGTERM', () => {
    clearInterval(alive);
    void (async () => {
      await orchestrator.close({ drainMs: 1_000 });
      await ledgerStore.close();
      await store.close();
      process.exit(0);
    })();
  });
}
