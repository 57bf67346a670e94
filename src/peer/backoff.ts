export interface BackoffPolicy {
  readonly initialMs: number
  readonly maxMs: number
  /** Relative jitter: a delay d becomes d * U(1 - jitter, 1 + jitter). */
  readonly jitter: number
}

/**
 * Delay before reconnect attempt number `failures` (1-based): exponential, capped, jittered
 * so that a cluster that lost a node does not redial it in lockstep. `random` is in [0, 1).
 */
export const backoffDelay = (policy: BackoffPolicy, failures: number, random: number): number => {
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, failures - 1))
  return Math.max(0, Math.round(base * (1 + policy.jitter * (2 * random - 1))))
}
