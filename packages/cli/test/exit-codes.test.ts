/** The one exit-code table: distinct codes, errors mapped by their code alike in every command, the docs' table the code's. */
import { readFileSync } from 'node:fs'
import { constants } from 'node:os'
import { LocalClusterError, MatrixError, OutDirError, SimulateUnsupportedError } from '@phalanx/lab'
import { ClusterBoundError, ConfigError } from '@phalanx/node'
import { describe, expect, it } from 'vitest'
import { FieldNotHonouredError } from '../src/errors.js'
import { exitCodeOf, exitCodes, exitCodesMarkdown, signalExitCodes } from '../src/exit-codes.js'

describe('exit codes', () => {
  it('are distinct, and a signal ends with 128 + its number (the shell convention)', () => {
    const codes = Object.values(exitCodes).map(({ code }) => code)
    expect(new Set(codes).size).toBe(codes.length)
    for (const [signal, code] of Object.entries(signalExitCodes)) {
      expect(code, signal).toBe(128 + constants.signals[signal as keyof typeof constants.signals])
    }
  })

  it.each([
    ['a bad config value', new ConfigError('m', { field: 'rule', value: 'krumm' }), exitCodes.usage.code],
    [
      'a bound the cluster breaks',
      new ClusterBoundError('m', 'N ≥ 3F+1', { N: 3, F: 1 }),
      exitCodes.usage.code,
    ],
    [
      'a field the command does not use',
      new FieldNotHonouredError({
        command: 'simulate',
        field: 'opsPort',
        source: 'flag',
        honouredBy: [],
        why: 'w',
      }),
      exitCodes.usage.code,
    ],
    ['a malformed matrix', new MatrixError('m', { source: 'f', key: 'k' }), exitCodes.usage.code],
    [
      'a mode simulate has no form of',
      new SimulateUnsupportedError({ field: 'replication', value: 'smr', allowed: [], why: 'w' }),
      exitCodes.usage.code,
    ],
    ['an out dir that cannot be written', new OutDirError({ dir: 'd', reason: 'r' }), exitCodes.outDir.code],
    [
      'a node that died',
      new LocalClusterError('m', { nodeId: 'server-0', exitCode: 1 }),
      exitCodes.failed.code,
    ],
    ['anything else', new Error('boom'), exitCodes.failed.code],
  ])('%s: the same code from every command', (_case, error, code) => {
    expect(exitCodeOf(error)).toBe(code)
  })

  it("docs/OPERATIONS.md's table is the code's (paste exitCodesMarkdown() between its markers)", () => {
    const doc = readFileSync(new URL('../../../docs/OPERATIONS.md', import.meta.url), 'utf8')
    const documented = /<!-- exit-codes:begin[^>]*-->\n([\s\S]*?)\n<!-- exit-codes:end -->/.exec(doc)?.[1]
    expect(documented).toBe(exitCodesMarkdown())
  })
})
