/**
 * `raft-transport/node`: the key-value node process as a library. `startNode` runs the
 * transport, the reference Raft manager and the HTTP API in one scope; the `raft-node`
 * command (`src/node/main.ts`) is `startNode` with a CLI around it.
 */
export { type RunningNode, startNode } from "./run.ts"
export {
  decodeHttpConfig,
  decodeNodeConfig,
  HttpConfig,
  loadNodeConfigFile,
  type NodeConfig,
  parseNodeConfigToml
} from "./node-config.ts"
export {
  type EventCounters,
  type HttpApi,
  type HttpApiOptions,
  HttpApiStartFailed,
  MAX_REQUEST_TIMEOUT_MS,
  maxCommandBytes,
  type Readiness,
  readiness,
  serveHttpApi,
  type StatusBody,
  trackEvents
} from "./http-api.ts"
