import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  clusterConfigSchema,
  configBounds,
  configFromEnv,
  configFromFile,
  envName,
  resolveConfig,
} from '../src/config.js'

const tmp = mkdtempSync(join(tmpdir(), 'phalanx-config-bounds-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

const shape = clusterConfigSchema.shape as Record<
  string,
  { safeParse(value: unknown): { success: boolean; data?: unknown } }
>

/** Fields whose schema takes a number and yields one: found from the schema, not listed here. */
const numericFields = Object.keys(shape).filter((field) =>
  [0, 0.5, 1, 100].some((value) => {
    const result = shape[field]!.safeParse(value)
    return result.success && typeof result.data === 'number'
  }),
)

/** Each bound and the smallest value past it (integers step by one, others by a millionth). */
const rows = Object.entries(configBounds).map(([field, bound]) => ({
  field,
  max: bound.max,
  over: Number.isInteger(bound.max) ? bound.max + 1 : bound.max + 1e-6,
  why: bound.why,
}))

describe('numeric config bounds', () => {
  it('the schema has numeric fields, and every one has a bound with its reason', () => {
    expect(numericFields.length).toBeGreaterThan(15)
    expect(numericFields.filter((field) => !(field in configBounds))).toEqual([])
    for (const field of Object.keys(configBounds)) expect(numericFields).toContain(field)
  })

  it.each(numericFields)(
    '%s refuses an absurdly large value (1e300) whatever its table row says',
    (field) => {
      expect(shape[field]!.safeParse(1e300).success).toBe(false)
    },
  )

  it.each(rows)('$field accepts its bound $max', ({ field, max }) => {
    expect(resolveConfig({ [field]: max })[field as keyof typeof configBounds]).toBe(max)
  })

  it.each(rows)(
    '$field = $over from the environment fails naming field, value, source and the bound',
    ({ field, over, max, why }) => {
      const env = envName(field)
      const attempt = () => resolveConfig(configFromEnv({ [env]: String(over) }))
      expect(attempt).toThrow(expect.objectContaining({ name: 'ConfigError', field, value: String(over) }))
      expect(attempt).toThrow(`config field "${field}" = ${JSON.stringify(String(over))}`)
      expect(attempt).toThrow(`environment variable ${env}`)
      expect(attempt).toThrow(`at most ${max} (${why})`)
    },
  )

  it.each(rows)('$field = $over in a config file fails naming the file', ({ field, over }) => {
    const file = join(tmp, `${field}.yaml`)
    writeFileSync(file, `${field}: ${over}\n`)
    expect(() => resolveConfig(configFromFile(file))).toThrow(`config file ${file}`)
  })

  it('a value set by a later layer is blamed on that layer, not the file it overrides', () => {
    const file = join(tmp, 'overridden.yaml')
    writeFileSync(file, 'roundWindow: 2\n')
    expect(() => resolveConfig(configFromFile(file), configFromEnv({ PHALANX_ROUND_WINDOW: '17' }))).toThrow(
      /"roundWindow" = "17", set by environment variable PHALANX_ROUND_WINDOW: at most 16 /,
    )
    expect(() => resolveConfig(configFromFile(file), { roundWindow: 99 })).toThrow(/set by flags/)
  })

  it('alieZ is bounded below too', () => {
    expect(resolveConfig({ alieZ: configBounds.alieZ.min }).alieZ).toBe(configBounds.alieZ.min)
    expect(() => resolveConfig({ alieZ: configBounds.alieZ.min - 1 })).toThrow(
      expect.objectContaining({ name: 'ConfigError', field: 'alieZ' }),
    )
  })
})

describe('natsReplicas', () => {
  it.each([
    [{}, 1],
    [configFromEnv({ PHALANX_NATS_REPLICAS: '3' }), 3],
    [{ natsReplicas: '5' }, 5],
  ])('%j → %i replicas', (layer, replicas) => {
    expect(resolveConfig(layer).natsReplicas).toBe(replicas)
  })

  it.each([0, 6, 2.5])('%j is refused', (value) => {
    expect(() => resolveConfig({ natsReplicas: value })).toThrow(
      expect.objectContaining({ name: 'ConfigError', field: 'natsReplicas' }),
    )
  })
})
