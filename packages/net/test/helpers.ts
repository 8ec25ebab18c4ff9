import {
  createMembership,
  encodeVectorMessage,
  type IncomingMessage,
  type MemberRole,
  type Membership,
  sha256,
  topicsFor,
  type ValidationContext,
  type VectorHeader,
  type VectorKind,
  vectorToBytes,
} from '../src/index.js'

export const cluster = 'unit'
export const dimension = 8
export const server = 'server-peer'
export const worker = 'worker-peer'
export const topics = topicsFor(cluster)

export function membership(): Membership {
  return createMembership({
    members: [
      [server, 'server'],
      [worker, 'worker'],
    ] as Array<[string, MemberRole]>,
  })
}

export function context(overrides: Partial<ValidationContext> = {}): ValidationContext {
  return {
    cluster,
    epoch: 0,
    dimension,
    maxPayloadBytes: 4 * dimension * 4,
    currentRound: 10,
    roundWindowAhead: 2,
    membership: membership(),
    ...overrides,
  }
}

export function vector(base: number, length = dimension): Float32Array {
  return Float32Array.from({ length }, (_, i) => base + i)
}

/** A valid model header from `server` for round 10, inline, with overrides applied last. */
export function header(
  overrides: Partial<VectorHeader> = {},
  values: Float32Array = vector(1),
): VectorHeader {
  const payload = vectorToBytes(values)
  return {
    cluster,
    round: 10,
    sender: server,
    role: 'server',
    kind: 'model',
    dimension: values.length,
    size: payload.byteLength,
    hash: sha256(payload),
    payload,
    epoch: 0,
    ...overrides,
  }
}

/** `from: null` builds an unsigned message. */
export function incoming(
  h: VectorHeader,
  from: string | null = h.sender,
  kind: VectorKind = 'model',
): IncomingMessage {
  return {
    topic: kind === 'model' ? topics.models : topics.gradients,
    from: from ?? undefined,
    data: encodeVectorMessage(h),
    sequenceNumber: 1n,
    signature: new Uint8Array(64),
  }
}
