/**
 * What a node process reports of itself, in a file of its own because both the process
 * (node-process.ts, which sends it) and its control plane (control-plane.ts, which turns its
 * rounds into telemetry) need it, and the process imports the control plane.
 */

/** Messages a node sends to the `phalanx local` parent (and logs, in any case). */
export type NodeReport =
  | { type: 'listening'; nodeId: string; peerId: string; multiaddrs: string[] }
  | { type: 'started'; nodeId: string; round: number; backend: string }
  | {
      type: 'round'
      nodeId: string
      round: number
      roundSeconds: number
      quorumWaitSeconds: number
      /**
       * CPU (user + system, every thread of the process) used since the node's previous round
       * report: what the node would need of a machine of its own, whatever else shares this one.
       */
      cpuSeconds: number
      accuracy?: number | undefined
      loss?: number | undefined
      /** ℓ2 distance from this server's published model of the round to each received one, by peer id. */
      distances?: Record<string, number>
      /** Peers whose gradients this server aggregated in the round (servers only). */
      gradientSenders?: string[]
      rejected: Record<string, number>
    }
  | {
      type: 'done'
      nodeId: string
      round: number
      accuracy?: number | undefined
      loss?: number | undefined
      /** A server's final model, as `modelSha256` (report.ts). */
      modelSha256?: string
    }
