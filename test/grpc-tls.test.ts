import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { append, heartbeat, nodeConfig, receiveN, startCluster, startNode, tempDir, addressOf } from "./support/cluster.ts"
import { eventually } from "./support/metrics.ts"

const hasOpenssl = existsSync("/usr/bin/openssl") || existsSync("/usr/local/bin/openssl")

/** A throwaway CA and one node certificate (server and client auth, for 127.0.0.1). */
const makeCertificates = (dir: string) => {
  const run = (...args: Array<string>) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" })
  run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=raft-test-ca", "-keyout", "ca.key", "-out", "ca.crt")
  run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=raft-node", "-keyout", "node.key", "-out", "node.csr")
  const ext = join(dir, "ext.cnf")
  execFileSync("sh", ["-c", `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth,clientAuth\\n' > ${ext}`])
  run("x509", "-req", "-in", "node.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-extfile", ext, "-out", "node.crt")
  return { ca_file: join(dir, "ca.crt"), cert_file: join(dir, "node.crt"), key_file: join(dir, "node.key") }
}

describe.skipIf(!hasOpenssl)("gRPC with TLS", () => {
  it.live("delivers with mutual TLS and refuses a client without a certificate", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const tls = { ...makeCertificates(dir), require_client_cert: true }
      const grpcConfig = { bind_address: "127.0.0.1:0", tls }
      const [a, b] = yield* startCluster(2, { grpc_config: grpcConfig }, "grpc")
      yield* a!.send(2, append(1, 2, 1))
      const [got] = yield* receiveN(b!, 1).pipe(Effect.timeout("20 seconds"))
      expect(got!.index).toBe(1)

      // Node 3 speaks plaintext gRPC: the TLS server never lets its calls through.
      const plain = yield* startNode(yield* nodeConfig("grpc", 3, dir, { grpc_config: { bind_address: "127.0.0.1:0" } }))
      yield* b!.addPeer(addressOf(plain))
      yield* plain.addPeer(addressOf(b!))
      yield* plain.send(2, heartbeat(3, 2))
      const status = yield* eventually(plain.peerStatus(2), (s) => (s.links[0]?.consecutiveFailures ?? 0) > 0)
      expect(status.links[0]!.state).not.toBe("connected")
      const nothing = yield* b!.receiveBatch(10).pipe(Effect.timeoutOption("500 millis"))
      expect(nothing._tag).toBe("None")
    }).pipe(Effect.scoped), { timeout: 60_000 })
})
