#!/usr/bin/env node
/**
 * Writes a local-dev copy of the Worker to build/dev/ (gitignored): src/*.js plus an embedded.js for tenant "dev".
 * It never writes into src/, because every .js file there is shipped. Used by wrangler.jsonc (`wrangler dev`), not by
 * the deploy path, which renders embedded.js in Python from src/embedded.js.j2.
 *
 *   node tools/dev-bundle.mjs [--tenant dev]
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { embeddedFor, MIGRATIONS_DIR, workerModules } from './bundle.mjs';
import { loadContract } from './contract.mjs';
import { loadMigrations } from './migrations.mjs';

const { values } = parseArgs({ options: { tenant: { type: 'string', default: 'dev' } } });
const tenant = String(values.tenant);
const contract = await loadContract();
const embedded = embeddedFor(contract, await loadMigrations(MIGRATIONS_DIR), {
	tenant,
	bundleHash: 'dev',
	greeting: `hello from ${tenant} (local dev)`,
});
const out = fileURLToPath(new URL('../build/dev/', import.meta.url));
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
const { modules } = await workerModules(embedded);
for (const m of modules) await writeFile(join(out, basename(m.path)), m.contents);
console.log(`wrote ${modules.length} modules to ${out} (tenant ${tenant}); RELAY_KEY comes from .dev.vars (base64 of 32 bytes)`);
