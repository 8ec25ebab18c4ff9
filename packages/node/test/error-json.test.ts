/** Every error of the package keeps its code and details through JSON (logs, experiment results, reports). */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  ChaosActionError,
  ClusterBoundError,
  ConfigError,
  nodeErrorCodes,
  QuorumTimeoutError,
  ServerStateError,
  SmrLogError,
  serverStateErrorCodes,
} from '../src/index.js'
import { BehindError } from '../src/protocol.js'

const int = fc.integer()
const text = fc.string()
const texts = fc.array(text)

const constructors: Record<string, fc.Arbitrary<Error & { code: string; details: object }>> = {
  ConfigError: fc
    .record({ field: text, value: fc.anything(), allowed: text }, { requiredKeys: ['field', 'value'] })
    .map((v) => new ConfigError('m', v)),
  ClusterBoundError: fc
    .tuple(text, fc.dictionary(text, int))
    .map(([bound, values]) => new ClusterBoundError('m', bound, values)),
  ChaosActionError: fc.record({ command: text, reason: text }).map((v) => new ChaosActionError('m', v)),
  SmrLogError: fc.record({ stream: text }).map((v) => new SmrLogError('m', v)),
  ServerStateError: fc
    .record({ code: fc.constantFrom(...serverStateErrorCodes), path: text })
    .map((v) => new ServerStateError('m', v)),
  QuorumTimeoutError: fc
    .record(
      {
        kind: fc.constantFrom('model', 'gradient') as fc.Arbitrary<'model' | 'gradient'>,
        round: int,
        quorum: int,
        senders: texts,
        perRound: fc.dictionary(text, int),
        timeoutMs: int,
      },
      { requiredKeys: ['kind', 'quorum', 'senders', 'timeoutMs'] },
    )
    .map((v) => new QuorumTimeoutError(v)),
  BehindError: fc.tuple(int, int, fc.nat(5)).map(
    ([from, round, count]) =>
      new BehindError(
        from,
        round,
        Array.from({ length: count }, (_, i) => ({ sender: `s${i}`, round, vector: new Float32Array(2) })),
      ),
  ),
}

const codes: readonly string[] = [...nodeErrorCodes, ...serverStateErrorCodes]

describe('errors through JSON', () => {
  it.each(Object.keys(constructors))('%s keeps its code and details', (name) => {
    fc.assert(
      fc.property(constructors[name]!, (error) => {
        const copy = JSON.parse(JSON.stringify(error))
        expect(copy).toMatchObject({ name, code: error.code })
        expect(copy.details).toEqual(error.details)
        expect(codes).toContain(error.code)
      }),
    )
  })
})
