/**
 * `npm start`: the shop as a monolith on its embedded defaults. Creates its
 * data under `./data` on first start (`SHOP_DATA_DIR` to move it), seeds the
 * catalog and a demo user, prints the URLs and a ready-to-paste order with a
 * real token. SIGTERM/SIGINT drain requests and close every store.
 *
 * With `topology: "services"` (`SHOP_TOPOLOGY=services`, or in `SHOP_CONFIG`)
 * it starts the services set instead (`services.ts`): same code, another
 * configuration.
 */
import { orderExample } from './example.js';
import { ConfigError, loadConfig, type ShopConfig } from './config.js';
import { startShop } from './shop.js';

let config: ShopConfig;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`shop: ${error.message}`);
    process.exit(2);
  }
  throw error;
}

if (config.topology === 'services') {
  await import('./services.js');
} else {
  await monolith(config);
}

async function monolith(config: ShopConfig): Promise<void> {
  const shop = await startShop(config, { signals: true });
  const { url } = shop;

  let example = `  (demo user disabled: register with POST ${url}/api/users/register)`;
  if (config.seed.demoUser) {
    const tokens = await shop.users.auth.login(config.seed.demoUsername, config.seed.demoPassword);
      example = orderExample(url, tokens.access_token, config);
  }

  console.log(`Bulwark shop (${config.topology}) ready in ${shop.startupMs} ms on ${url}
  data:          ${config.dataDir}
  products:      ${url}/api/catalog/products
  product page:  ${url}/api/product-page/KB-001
  orders:        ${url}/api/orders
  auth:          ${url}/api/users/token
  openapi:       ${url}/openapi.json
  health:        ${url}/health/ready${
    config.faults.admin
      ? `
  faults:        ${url}/admin/faults  (header x-shop-internal-key)`
      : ''
  }${
    config.telemetry.enabled
      ? `
  metrics:       ${url}/metrics
  SLOs:          ${url}/slo  (Prometheus rules: ${url}/slo/rules)
  traces:        ${url}/traces  (header x-shop-internal-key)`
      : ''
  }

Place an order as the demo user (${config.seed.demoUsername}):
${example}

Ctrl-C to stop.`);
}
