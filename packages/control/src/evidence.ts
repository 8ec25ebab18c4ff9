/**
 * Equivocation evidence on the control plane. The data plane keeps what it caught (two signed
 * hashes from one sender for one round) compact and bounded; the node hands it over here, each
 * pair is signed by the node's peer key and published once on `phalanx.<cluster>.evidence.<nodeId>`,
 * and the node forgets it. Publishing never waits and never throws, like telemetry; unlike
 * telemetry nothing is buffered: a caller takes evidence only while NATS is connected (the data
 * plane's bounded store is the buffer), and a record lost in a publish that failed is counted.
 */
import type { ControlConnection } from './connection.js'
import { createLogOnce } from './connection.js'
import { canonicalJson } from './operator.js'
import type { EquivocationRecord } from './subjects.js'
import { EquivocationRecordSchema } from './subjects.js'

/** One signed message of an equivocation as the data plane keeps it (structurally its type). */
export interface SignedMessageInput {
  hash: string
  sequenceNumber?: bigint | undefined
  signature?: Uint8Array | undefined
  /** The signed bytes, only when they carry no payload. */
  data?: Uint8Array | undefined
}

/** Two different signed messages from one sender for one round and kind (the data plane's evidence). */
export interface EquivocationInput {
  kind: 'model' | 'gradient'
  round: number
  sender: string
  first: SignedMessageInput
  second: SignedMessageInput
}

export interface EvidenceSigner {
  peerId: string
  sign(statement: Uint8Array): Promise<Uint8Array> | Uint8Array
}

export interface EvidenceStats {
  /** Records handed to the NATS client. */
  published: number
  /** Records not sent: NATS away, refused, or failed (logged once per cause). */
  lost: number
  /** Records the schema refused (a caller bug: a field out of its bounds). */
  invalid: number
  signFailures: number
}

export interface EvidencePublisher {
  /** Signs and publishes each pair once; never blocks, never throws. */
  publish(evidence: readonly EquivocationInput[]): void
  stats(): EvidenceStats
  /** Resolves once everything published so far was signed and handed on (tests, shutdown). */
  settled(): Promise<void>
}

export interface EvidencePublisherInit {
  conn: ControlConnection
  nodeId: string
  signer: EvidenceSigner
}

const EVIDENCE_DOMAIN = 'phalanx-evidence/v1\n'
const textEncoder = new TextEncoder()

/**
 * The bytes a record's signature covers: a domain tag (no other signed statement of the system
 * passes for evidence) and the canonical JSON of every field but the signature.
 */
export function evidenceStatement(record: Omit<EquivocationRecord, 'signature'>): Uint8Array {
  const { signature: _ignored, ...signed } = record as EquivocationRecord
  return textEncoder.encode(EVIDENCE_DOMAIN + canonicalJson(signed))
}

const base64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url')

function messageRecord(message: SignedMessageInput): EquivocationRecord['first'] {
  return {
    hash: message.hash,
    ...(message.sequenceNumber === undefined ? {} : { seqno: message.sequenceNumber.toString() }),
    ...(message.signature === undefined ? {} : { signature: base64url(message.signature) }),
    ...(message.data === undefined ? {} : { data: base64url(message.data) }),
  }
}

/** The unsigned record of one evidence pair, as this node reports it. */
export function evidenceRecord(
  reporter: { nodeId: string; peerId: string },
  evidence: EquivocationInput,
): Omit<EquivocationRecord, 'signature'> {
  return {
    nodeId: reporter.nodeId,
    peerId: reporter.peerId,
    kind: evidence.kind,
    round: evidence.round,
    sender: evidence.sender,
    first: messageRecord(evidence.first),
    second: messageRecord(evidence.second),
  }
}

export function createEvidencePublisher(init: EvidencePublisherInit): EvidencePublisher {
  const { conn, signer } = init
  const log = conn.log.child({ component: 'evidence' })
  const subject = conn.subjects.evidence(init.nodeId)
  const logOnce = createLogOnce(log)
  const stats: EvidenceStats = { published: 0, lost: 0, invalid: 0, signFailures: 0 }
  // One after the other, so records leave in the order they were caught.
  let signing: Promise<void> = Promise.resolve()

  const publishOne = async (evidence: EquivocationInput): Promise<void> => {
    const unsigned = evidenceRecord({ nodeId: init.nodeId, peerId: signer.peerId }, evidence)
    let signature: string
    try {
      signature = base64url(await signer.sign(evidenceStatement(unsigned)))
    } catch (error) {
      stats.signFailures += 1
      logOnce('sign-failed', { err: error }, 'evidence signing failed; record not published (logged once)')
      return
    }
    const record = { ...unsigned, signature }
    if (!EquivocationRecordSchema.safeParse(record).success) {
      stats.invalid += 1
      logOnce('invalid', { round: evidence.round }, 'evidence record out of its schema (logged once)')
      return
    }
    const outcome = conn.publish('evidence', subject, record)
    if (outcome === 'sent') {
      stats.published += 1
      log.info(
        { sender: evidence.sender, kind: evidence.kind, round: evidence.round },
        'equivocation evidence published',
      )
    } else {
      stats.lost += 1
      logOnce(`lost-${outcome}`, { outcome }, 'equivocation evidence not published (logged once per cause)')
    }
  }

  return {
    publish(evidence) {
      for (const pair of evidence) signing = signing.then(() => publishOne(pair))
    },
    stats: () => ({ ...stats }),
    settled: () => signing,
  }
}
