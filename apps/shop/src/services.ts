/**
 * `npm run start:services`: the shop as a services set — a process per module
 * plus the gateway (`services/launcher.ts`), PostgreSQL with a schema per
 * module (`services.db`), events over NATS JetStream (or RabbitMQ:
 * `SHOP_SERVICES__TRANSPORT=rabbitmq`). Prints the gateway URL and a
 * ready-to-paste order with a real token. SIGINT/SIGTERM stop every process
 * (gateway first) and exit 0 once all have exited.
 *
 * Also what `npm start` runs when the configuration says `topology: "services"`.
 */
import { orderExample } from './example.js';
import { ConfigError, loadConfig, MODULES, type ShopConfig } from './config.js';
import { startServices, type ServicesSet } from './services/launcher.js';

let config: ShopConfig;
try {
  config = loadConfig({ overrides: { topology: 'services' } });
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`shop: ${error.message}`);
    process.exit(2);
  }
  throw error;
}

let set: ServicesSet | undefined;
let stopping = false;
async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    console.log('\nshop: stopping the services (gateway first)...');
    await set?.stop();
    console.log('shop: every process has exited.');
  }
  process.exit(code);
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void shutdown(0));

try {
  set = await startServices(config);
} catch (error) {
  console.error(`shop: the services did not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
void set.crashed.then(({ name, code, signal }) => {
  console.error(`shop: the ${name} process exited unexpectedly (${signal ?? `code ${String(code)}`}); stopping the others.`);
  void shutdown(1);
});

const { url } = set;
let example = `  (demo user disabled: register with POST ${url}/api/users/register)`;
if (config.seed.demoUser) {
  const res = await fetch(`${url}/api/users/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: config.seed.demoUsername, password: config.seed.demoPassword }),
  });
  const tokens = (await res.json()) as { access_token?: string };
  example = orderExample(url, tokens.access_token ?? '<POST /api/users/token failed>', config);
}

const events = config.services.transport === 'nats' ? `NATS JetStream ${config.services.natsUrl}` : `RabbitMQ ${config.services.rabbitmqUrl.replace(/\/\/[^@/]*@/, '//***@')}`;
const width = Math.max(...MODULES.map((m) => m.length));
console.log(`Bulwark shop (services) ready in ${set.startupMs} ms; gateway on ${url}
  gateway:       ${url}  (pid ${set.pids.gateway})
${MODULES.map((m) => `  ${`${m}:`.padEnd(width + 1)}  ${set?.modules[m] ?? ''}  (pid ${set?.pids[m] ?? ''})`).join('\n')}
  stores:        ${config.services.db.replace(/\/\/[^@/]*@/, '//***@')} (a schema per module${config.services.namespace === '' ? '' : `, prefixed ${config.services.namespace}_`})
  events:        ${events}

  products:      ${url}/api/catalog/products
  product page:  ${url}/api/product-page/KB-001
  orders:        ${url}/api/orders

Place an order as the demo user (${config.seed.demoUsername}), through the gateway:
${example}

Ctrl-C to stop every process.`);
