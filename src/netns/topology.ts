/**
 * Kept only for src/controller/controller.ts, which imports NETNS_DIR from
 * here; the namespace topology builder moved to harness/topology.ts. Delete
 * this file once controller.ts imports NETNS_DIR from src/paths.ts.
 */
export { NETNS_DIR } from '../paths.js';
