/**
 * What a node process reports of itself, in a file of its own because both the process
 * (node-process.ts, which sends it) and its control plane (control-plane.ts, which turns its
 * rounds into telemetry) need it, and the process imports the control plane.
 */

import type { RoundRecord } from '@phalanx/control'

/** Messages a node sends to the `phalanx local` parent (and logs, in any case). */
export type NodeReport =
  | { type: 'listening'; nodeId: string; peerId: string; multiaddrs: string[] }
  /** `backend` is absent on a node that runs no tensor code (a Byzantine server). */
  | { type: 'started'; nodeId: string; round: number; backend?: string }
  /**
   * A completed round: the node's one record of it (`RoundRecord`, control/subjects.ts), with the
   * fields a node process always measures present.
   */
  | ({ type: 'round' } & RoundRecord &
      Required<
        Pick<
          RoundRecord,
          'roundDurationSeconds' | 'quorumWaitByInputSeconds' | 'cpuSeconds' | 'rejectedSinceStart'
        >
      >)
  /**
   * A chaos command this node accepted (signed by the operator), sent before it is carried out
   * (a kill ends the process): `round` is the one the node was working on, `command` one line.
   */
  | { type: 'chaos'; nodeId: string; round: number; command: string }
  | {
      type: 'done'
      nodeId: string
      round: number
      accuracy?: number | undefined
      loss?: number | undefined
      /** A server's final model, as `modelSha256` (model-hash.ts). */
      modelSha256?: string
    }
