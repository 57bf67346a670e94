/**
 * The switch every form module of `interleaved-ab.ts` shares: SIGUSR2 puts the node in form B,
 * SIGWINCH back in form A (the product as built).
 */
let formB = false
process.on("SIGUSR2", () => void (formB = true))
process.on("SIGWINCH", () => void (formB = false))

/** Whether the node runs form B now. */
export const inFormB = (): boolean => formB
