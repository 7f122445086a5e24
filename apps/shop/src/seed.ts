/**
 * The catalog seeded on first start. Catalog (names, prices) and inventory
 * (stock) each seed their own store from it; neither reads the other's.
 */
export interface SeedProduct {
  sku: string;
  name: string;
  description: string;
  category: string;
  /** Minor units (cents). */
  price: number;
  stock: number;
}

export const CURRENCY = 'EUR';

export const SEED_PRODUCTS: readonly SeedProduct[] = [
  { sku: 'KB-001', name: 'Mechanical keyboard', description: 'Tenkeyless, brown switches.', category: 'peripherals', price: 8_900, stock: 50 },
  { sku: 'MS-002', name: 'Wireless mouse', description: 'Six buttons, two-month battery.', category: 'peripherals', price: 3_450, stock: 120 },
  { sku: 'MN-003', name: '27" monitor', description: '2560x1440, 144 Hz.', category: 'displays', price: 32_900, stock: 15 },
  { sku: 'HS-004', name: 'Headset', description: 'Closed-back, detachable microphone.', category: 'audio', price: 7_900, stock: 40 },
  { sku: 'CB-005', name: 'USB-C cable', description: 'Two metres, 100 W.', category: 'accessories', price: 1_290, stock: 500 },
  { sku: 'LE-006', name: 'Limited edition desk mat', description: 'Numbered; only one left.', category: 'accessories', price: 4_900, stock: 1 },
];
