import { readFileSync } from 'node:fs'
import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import type { RoundReport } from '../src/index.js'
import { createMetrics, nodeMetricDefinitions, observeRound, unitlessMetricNames } from '../src/index.js'

async function values(registry: Registry, name: string) {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name)
  return metric?.values.map((v) => ({
    labels: v.labels,
    value: v.value,
    // Histograms report _bucket/_sum/_count samples with their own names.
    metricName: (v as { metricName?: string }).metricName,
  }))
}

describe('createMetrics', () => {
  it('names every metric with a unit suffix', async () => {
    const registry = new Registry()
    createMetrics(registry, { defaultMetrics: false })
    const names = (await registry.getMetricsAsJSON()).map((m) => m.name)
    expect(names.length).toBeGreaterThanOrEqual(10)
    const exceptions = unitlessMetricNames
    expect(names).toEqual(expect.arrayContaining([...exceptions]))
    expect(
      names.filter((name) => !exceptions.includes(name) && !/_(total|seconds|bytes|ratio)$/.test(name)),
    ).toEqual([])
    // Counters end in _total and nothing else does.
    for (const definition of Object.values(nodeMetricDefinitions))
      expect(definition.name.endsWith('_total'), definition.name).toBe(definition.type === 'counter')
  })

  it.each<{ report: RoundReport; metric: string; expected: { labels: object; value: number }[] }>([
    { report: { round: 1 }, metric: 'phalanx_rounds_total', expected: [{ labels: {}, value: 1 }] },
    // Round 4 completed: the node works on round 5.
    { report: { round: 4 }, metric: 'phalanx_round_current', expected: [{ labels: {}, value: 5 }] },
    // The round's rejections are the data plane's counters' (copied by the node's control plane,
    // packages/node/test/control-plane-metrics.test.ts): the report's are not counted again.
    {
      report: { round: 1, rejected: { dimension: 2, 'non-finite': 0, equivocation: 1 } },
      metric: 'phalanx_rejected_messages_total',
      expected: [],
    },
    {
      report: {
        round: 1,
        suspicions: [
          { suspect: 'a', reason: 'equivocation', round: 1, evidence: {} },
          { suspect: 'b', reason: 'equivocation', round: 1, evidence: {} },
        ],
      },
      metric: 'phalanx_suspicions_total',
      expected: [{ labels: { reason: 'equivocation' }, value: 2 }],
    },
    {
      report: { round: 1, accuracy: 0.875 },
      metric: 'phalanx_accuracy_ratio',
      expected: [{ labels: {}, value: 0.875 }],
    },
  ])('observeRound records $metric', async ({ report, metric, expected }) => {
    const registry = new Registry()
    observeRound(createMetrics(registry, { defaultMetrics: false }), report)
    expect((await values(registry, metric))?.map(({ labels, value }) => ({ labels, value }))).toEqual(
      expected,
    )
  })

  it('observeRound feeds the duration histograms, the quorum wait by input', async () => {
    const registry = new Registry()
    observeRound(createMetrics(registry, { defaultMetrics: false }), {
      round: 1,
      roundDurationSeconds: 0.3,
      quorumWaitSeconds: 0.05,
      quorumWaitByInputSeconds: { models: 0.02, gradients: 0.03 },
    })
    const duration = await values(registry, 'phalanx_round_duration_seconds')
    expect(duration?.find((s) => s.metricName === 'phalanx_round_duration_seconds_sum')?.value).toBeCloseTo(
      0.3,
    )
    const quorum = await values(registry, 'phalanx_quorum_wait_seconds')
    const sums = quorum?.filter((s) => s.metricName === 'phalanx_quorum_wait_seconds_sum')
    expect(sums?.map((s) => [s.labels.input, s.value])).toEqual([
      ['models', 0.02],
      ['gradients', 0.03],
    ])
  })

  it('defines exactly the families of the table, each with its type, labels and help', async () => {
    const registry = new Registry()
    createMetrics(registry, { defaultMetrics: false })
    const exported = (await registry.getMetricsAsJSON()).map((m) => ({
      name: m.name,
      type: m.type,
      help: m.help,
    }))
    expect(exported).toEqual(
      Object.values(nodeMetricDefinitions).map(({ name, type, help }) => ({ name, type, help })),
    )
  })

  it('is documented in OPERATIONS.md row by row, as the definitions say', () => {
    const doc = readFileSync(new URL('../../../docs/OPERATIONS.md', import.meta.url), 'utf8')
    const unit = (name: string) =>
      name.endsWith('_info')
        ? 'info (1)'
        : name === 'phalanx_round_current'
          ? 'round'
          : name.endsWith('_bytes_total')
            ? 'bytes'
            : name.endsWith('_seconds')
              ? 'seconds'
              : name.endsWith('_ratio')
                ? 'ratio'
                : 'count'
    // The rows of the metrics table: a family's name, then its type.
    const documented = doc
      .split('\n')
      .filter((line) => /^\| `phalanx_[^`]+` \| (counter|gauge|histogram) \|/.test(line))
    const expected = Object.values(nodeMetricDefinitions).map((d) => {
      const name = d.labels.length > 0 ? `${d.name}{${d.labels.join(',')}}` : d.name
      const when = 'when' in d ? d.when : 'always, from the first rounds'
      return `| \`${name}\` | ${d.type} | ${unit(d.name)} | ${d.roles.join(', ')} | ${d.help} | ${when} |`
    })
    expect(documented).toEqual(expected)
  })
})
