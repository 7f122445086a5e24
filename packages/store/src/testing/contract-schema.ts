/** The small schema the store contract suite works on. */
import type { Generated } from 'kysely';
import type { Migration } from '../migrations.js';

export interface CounterDb {
  counters: { name: string; value: number };
  notes: { id: Generated<number>; body: string };
}

export const contractMigrations: Migration[] = [
  {
    id: '0001_counters',
    up: (db) =>
      db.schema
        .createTable('counters')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('value', 'integer', (c) => c.notNull())
        .execute(),
  },
  {
    id: '0002_notes',
    up: (db, dialect) =>
      db.schema
        .createTable('notes')
        .addColumn('id', dialect === 'postgres' ? 'serial' : 'integer', (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('body', 'text', (c) => c.notNull())
        .execute(),
  },
];
