/**
 * `make run` and the README's second-terminal commands (`node --import tsx scripts/cluster.ts <command>`) start here;
 * the local cluster manager itself lives in the harness workspace (packages/harness/src/cluster.ts) and runs on import.
 */
import '@messaging-server/harness/cluster';
