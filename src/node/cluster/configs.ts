/** Key files and node TOML configs for a loopback cluster, keys first so every peer table is complete. */
import { ClusterError } from "./errors.ts"
import { Effect } from "effect"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { stringify } from "smol-toml"
import { freePorts } from "./ports.ts"
import { endpointIdOf, loadOrCreateSecretKey } from "../../iroh/identity.ts"

export type ClusterTransport = "iroh" | "grpc" | "dual"

export interface NodeSpec {
  readonly id: number
  readonly configFile: string
  readonly keyFile: string
  readonly logFile: string
  readonly dataDir: string
  /** `127.0.0.1:port` of the HTTP API. */
  readonly http: string
  readonly iroh: string | undefined
  readonly grpc: string | undefined
  readonly endpointId: string
}

export interface LayoutOptions {
  /** Where configs, keys, data and logs go. */
  readonly dir: string
  readonly nodes: number
  readonly transport: ClusterTransport
  /** Extra keys for every node's `[raft]` table (`voters` and `data_dir` are set here). */
  readonly raft?: Record<string, unknown>
  /** Keys for every node's `[transport]` table that replace the ones set here (e.g. `reconnect`). */
  readonly transportOverrides?: Record<string, unknown>
  /** Keys for every node's `[transport.iroh_config]` table, added to its key file and addresses. */
  readonly irohOverrides?: Record<string, unknown>
  /** Every node's `[process]` table (absent: its defaults). */
  readonly process?: Record<string, unknown>
}

/**
 * Writes a key file and `node<id>.toml` per node into `dir` (ids 1..n) and returns where each
 * node listens. Every config lists every other node as a peer with its fixed address.
 */
export const writeClusterConfigs = (options: LayoutOptions): Effect.Effect<ReadonlyArray<NodeSpec>, ClusterError> =>
  Effect.gen(function*() {
    const { dir, nodes: n, transport } = options
    const usesIroh = transport !== "grpc"
    const usesGrpc = transport !== "iroh"
    const ports = yield* freePorts(n * (usesGrpc ? 2 : 1), usesIroh ? n : 0)
    const ids = Array.from({ length: n }, (_, i) => i + 1)
    const specs: Array<NodeSpec> = []
    for (const id of ids) {
      const nodeDir = join(dir, `node${id}`)
      mkdirSync(nodeDir, { recursive: true })
      const keyFile = join(nodeDir, "iroh.key")
      const key = yield* loadOrCreateSecretKey(keyFile).pipe(
        Effect.mapError((e) => new ClusterError({ message: e.message, cause: e }))
      )
      const i = id - 1
      specs.push({
        id,
        configFile: join(dir, `node${id}.toml`),
        keyFile,
        logFile: join(dir, `node${id}.log`),
        dataDir: join(nodeDir, "data"),
        http: `127.0.0.1:${ports.tcp[i]}`,
        iroh: usesIroh ? `127.0.0.1:${ports.udp[i]}` : undefined,
        grpc: usesGrpc ? `127.0.0.1:${ports.tcp[n + i]}` : undefined,
        endpointId: endpointIdOf(key)
      })
    }
    for (const spec of specs) {
      const peers = specs.filter((p) => p.id !== spec.id).map((p) => ({
        id: p.id,
        ...(p.iroh !== undefined ? { iroh_endpoint_id: p.endpointId, iroh_addresses: [p.iroh] } : {}),
        ...(p.grpc !== undefined ? { grpc_address: p.grpc } : {})
      }))
      const doc = {
        transport: {
          node_id: spec.id,
          mode: transport,
          cluster_id: "local-cluster",
          bind_address: "127.0.0.1:0",
          ...(spec.iroh !== undefined
            ? { iroh_config: { key_file: spec.keyFile, relay_mode: "disabled", bind_address: spec.iroh, ...options.irohOverrides } }
            : {}),
          ...(spec.grpc !== undefined ? { grpc_config: { bind_address: spec.grpc } } : {}),
          reconnect: { initial_backoff_ms: 20, max_backoff_ms: 500 },
          strategy: { probe_interval_ms: 250 },
          peers,
          ...options.transportOverrides
        },
        raft: { voters: ids, data_dir: spec.dataDir, ...options.raft },
        http: { bind_address: spec.http },
        ...(options.process === undefined ? {} : { process: options.process })
      }
      writeFileSync(spec.configFile, stringify(doc))
    }
    return specs
  })
