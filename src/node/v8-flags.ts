import { availableParallelism } from "node:os"

/**
 * V8 flags for a node process on a machine with `cores` cores. On two cores or fewer, V8's
 * concurrent and parallel GC helper threads compete for the same cores as the Iroh binding's
 * threads and the event loop, and a collection in one node delays votes in every node that
 * shares the machine: `--single-threaded-gc` keeps garbage collection on the main thread.
 * Measured with `npm run bench` (docs/design.md, "Garbage collection on small machines"): the vote
 * p99 under a snapshot went from 3.8-4.3x idle to 1.3-2.3x (vote-only runs), and the raw
 * binding ceiling did not suffer.
 * V8 refuses this flag in NODE_OPTIONS, so it goes on the command line of each process.
 */
export const nodeV8Flags = (cores: number = availableParallelism()): ReadonlyArray<string> =>
  cores <= 2 ? ["--single-threaded-gc"] : []
