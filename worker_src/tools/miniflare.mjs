/** Re-export so scripts outside worker_src/ (bench/) resolve the pinned Miniflare from worker_src/node_modules. */
export { Miniflare } from 'miniflare';
