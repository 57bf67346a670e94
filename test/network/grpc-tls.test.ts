import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import { existsSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { inboundRefused } from "../../src/metrics/metrics.ts"
import { addressOf, append, heartbeat, introduce, nodeConfig, receiveN, startNode, tempDir } from "../support/network-cluster.ts"
import { eventually } from "../support/eventually.ts"
import { counter } from "../support/metrics.ts"

const hasOpenssl = existsSync("/usr/bin/openssl") || existsSync("/usr/local/bin/openssl")

/** A throwaway CA, and node certificates (server and client auth, for 127.0.0.1). */
const makeCa = (dir: string) => {
  const run = (...args: Array<string>) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" })
  run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=raft-test-ca", "-keyout", "ca.key", "-out", "ca.crt")
  /** A certificate whose URI SAN names raft node `id` of cluster "default". */
  const nodeCertificate = (id: number) => {
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=raft-node-${id}`, "-keyout", `node${id}.key`, "-out", `node${id}.csr`)
    writeFileSync(
      join(dir, `ext${id}.cnf`),
      `subjectAltName=IP:127.0.0.1,DNS:localhost,URI:raft://default/${id}\nextendedKeyUsage=serverAuth,clientAuth\n`
    )
    run("x509", "-req", "-in", `node${id}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-extfile", `ext${id}.cnf`, "-out", `node${id}.crt`)
    return { ca_file: join(dir, "ca.crt"), cert_file: join(dir, `node${id}.crt`), key_file: join(dir, `node${id}.key`) }
  }
  return nodeCertificate
}

const tlsNode = (dir: string, id: number, tls: Record<string, unknown>) =>
  Effect.flatMap(nodeConfig("grpc", id, dir, { grpc_config: { bind_address: "127.0.0.1:0", tls } }), startNode)

describe.skipIf(!hasOpenssl)("gRPC with TLS", () => {
  it.live("delivers with mutual TLS, refuses a client without a certificate, and binds identity to the certificate", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      const certificate = makeCa(dir)
      const a = yield* tlsNode(dir, 1, { ...certificate(1), require_client_cert: true, bind_identity: true })
      const b = yield* tlsNode(dir, 2, { ...certificate(2), require_client_cert: true, bind_identity: true })
      yield* introduce([a, b])
      yield* a.send(2, append(1, 2, 1))
      const [got] = yield* receiveN(b, 1).pipe(Effect.timeout("20 seconds"))
      expect(got!.index).toBe(1)

      // Node 3 speaks plaintext gRPC: the TLS server never lets its calls through.
      const plain = yield* startNode(yield* nodeConfig("grpc", 3, dir, { grpc_config: { bind_address: "127.0.0.1:0" } }))
      yield* b.addPeer(addressOf(plain))
      yield* plain.addPeer(addressOf(b))
      yield* plain.send(2, heartbeat(3, 2))
      const status = yield* eventually("a failed dial", plain.peerStatus(2), (s) => (s.links[0]?.consecutiveFailures ?? 0) > 0, 10_000)
      expect(status.links[0]!.state).not.toBe("connected")
      const nothing = yield* b.receiveBatch(10).pipe(Effect.timeoutOption("500 millis"))
      expect(nothing._tag).toBe("None")

      // Node 4 has a certificate from the right CA, but for node 1: with bind_identity it cannot
      // speak as node 4 (nor as anyone but node 1).
      const before = yield* counter(inboundRefused, { transport: "grpc", reason: "cert_mismatch" })
      const impostor = yield* tlsNode(dir, 4, { ...certificate(1), require_client_cert: true })
      yield* b.addPeer(addressOf(impostor))
      yield* impostor.addPeer(addressOf(b))
      yield* impostor.send(2, heartbeat(4, 2))
      yield* eventually("cert_mismatch counted", counter(inboundRefused, { transport: "grpc", reason: "cert_mismatch" }), (n) => n > before, 10_000)
      expect((yield* b.receiveBatch(10).pipe(Effect.timeoutOption("300 millis")))._tag).toBe("None")
    }).pipe(Effect.scoped), { timeout: 60_000 })
})
