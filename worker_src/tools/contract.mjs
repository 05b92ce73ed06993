/** The shared contract, read from its one home (contract/edge-contract.json) for node-side tools and tests. */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export const CONTRACT_PATH = fileURLToPath(new URL('../../contract/edge-contract.json', import.meta.url));

/** @returns {Promise<any>} */
export async function loadContract() {
	return JSON.parse(await readFile(CONTRACT_PATH, 'utf8'));
}
