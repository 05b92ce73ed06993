/**
 * The cron path of a user Worker in dispatch mode (`POST <dispatch.cron_path>`, schedule in `<dispatch.cron_header>`).
 * Cron triggers on user Workers are not generally available, so the dispatcher calls this every minute a schedule
 * is due. It exists only when the isolation binding says `dispatch`: a user Worker can be reached only through the
 * dispatcher, which refuses this path from outside. In `workers` mode the path is an ordinary 404.
 */
import { json, methodNotAllowed, notFound } from './http.js';

const MAX_CRON_LENGTH = 120;

/**
 * @param {Request} request @param {Record<string, unknown>} env @param {any} contract
 * @param {(cron: string) => Promise<void>} run the Worker's own scheduled handler
 */
export async function handleDispatchedCron(request, env, contract, run) {
	const d = contract.dispatch;
	if (env[d.isolation_binding] !== 'dispatch') return notFound();
	if (request.method !== 'POST') return methodNotAllowed(['POST']);
	const cron = request.headers.get(d.cron_header) ?? '';
	if (!cron || cron.length > MAX_CRON_LENGTH) return json(400, { error: 'cron_missing' });
	try {
		await run(cron);
	} catch (err) {
		console.error(`edge: dispatched cron failed (${/** @type {Error} */ (err)?.name ?? 'error'})`);
		return json(503, { error: 'cron_failed' });
	}
	return json(200, { ran: true });
}
