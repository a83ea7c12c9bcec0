import { defineConfig } from 'drizzle-kit';

// Used only to generate SQL migrations from db/schema.ts (`npm run db:generate`); no database needed.
export default defineConfig({
  dialect: 'postgresql',
  schema: './db/schema.ts',
  out: './db/migrations',
});
