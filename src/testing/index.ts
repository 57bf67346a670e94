/**
 * `raft-transport/testing`: an in-memory `RaftTransport` for unit tests of code that runs on
 * the transport. It loads neither the Iroh binding nor grpc-js.
 */
export { MemoryNetwork, type MemoryTransportOptions } from "./memory-network.ts"
