/**
 * Worker side of `parallel.ts`: runs one tiled kernel on a coordinate range of inputs that live
 * in SharedArrayBuffers, and answers with a partial Gram matrix or by writing its slice of the
 * shared output. Pure computation; the only I/O is the message port.
 */
import { parentPort } from 'node:worker_threads'
import { isPhalanxError, PhalanxError } from '@phalanx/errors'
import { coordinatewise } from './coordinatewise.js'
import { gramMatrix } from './distances.js'
import type { WorkerReply, WorkerTask } from './parallel.js'

function rowsOf(task: WorkerTask): Float32Array[] {
  return task.rows.map(({ buffer, byteOffset, length }) =>
    new Float32Array(buffer, byteOffset, length).subarray(task.start, task.end),
  )
}

parentPort?.on('message', (task: WorkerTask) => {
  const port = parentPort!
  try {
    const rows = rowsOf(task)
    if (task.kind === 'gram') {
      const gram = gramMatrix(rows)
      const reply: WorkerReply = { id: task.id, gram }
      port.postMessage(reply, [gram.buffer as ArrayBuffer])
    } else {
      const out = coordinatewise(rows, task.mode, task.rule)
      new Float32Array(task.out, task.start * 4, task.end - task.start).set(out)
      const reply: WorkerReply = { id: task.id }
      port.postMessage(reply)
    }
  } catch (error) {
    const failure = isPhalanxError(error)
      ? error
      : new PhalanxError('worker_failed', { task: task.kind }, { cause: error, message: String(error) })
    const reply: WorkerReply = { id: task.id, error: failure.toJSON() }
    port.postMessage(reply)
  }
})
