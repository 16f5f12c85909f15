/**
 * `make run` and the README's second-terminal commands (`node --import tsx scripts/cluster.ts <command>`) start here;
 * the local cluster manager itself lives in the testkit (packages/testkit/src/cluster-manager.ts) and runs on import.
 */
import '@messaging-server/testkit/cluster-manager';
