/**
 * What a PromQL expression names, read by Prometheus's own grammar (`@prometheus-io/lezer-promql`,
 * the parser of Prometheus's query editor), and what the nodes really export, read from the
 * registry a node builds (`createMetrics`, with Node's process metrics): the two sides of every
 * check that a dashboard panel or an alert rule queries series that exist.
 */
import { createMetrics } from '@phalanx/control'
import { PhalanxError } from '@phalanx/errors'
import { parser } from '@prometheus-io/lezer-promql'
import { Registry } from 'prom-client'

export class PromqlParseError extends PhalanxError<'promql_parse', { expr: string; at: number }> {
  override readonly name = 'PromqlParseError'
  declare readonly expr: string
  declare readonly at: number
  constructor(message: string, values: { expr: string; at: number }) {
    super('promql_parse', values, { message })
  }
}

export interface PromqlNames {
  /** Metric names of every vector selector. */
  metrics: string[]
  /** Label names of every matcher, grouping (`by`, `without`, `on`, `ignoring`, `group_left`). */
  labels: string[]
}

/**
 * The metrics and labels an expression names. Throws `PromqlParseError` for what Prometheus would
 * refuse, and for a selector without a metric name (`{__name__=~"…"}`), whose series cannot be
 * checked.
 */
export function promqlNames(expr: string): PromqlNames {
  const names: PromqlNames = { metrics: [], labels: [] }
  let error: number | undefined
  parser.parse(expr).iterate({
    enter(node) {
      if (node.type.isError) error ??= node.from
      else if (node.name === 'VectorSelector') {
        const identifier = node.node.getChild('Identifier')
        if (identifier === null) error ??= node.from
        else names.metrics.push(expr.slice(identifier.from, identifier.to))
      } else if (node.name === 'LabelName') names.labels.push(expr.slice(node.from, node.to))
    },
  })
  if (error !== undefined) {
    throw new PromqlParseError(`not PromQL with named metrics at ${error}: ${expr}`, { expr, at: error })
  }
  return names
}

/**
 * Grafana's interval variables, which stand where PromQL takes a duration, as the duration
 * Grafana would put there; `$var` in a label value stays, it is inside a string.
 */
export function grafanaToPromql(expr: string): string {
  return expr.replace(
    /\$(__rate_interval|__interval|__range)\b|\$\{(__rate_interval|__interval|__range)\}/g,
    '5m',
  )
}

/** Labels every scraped series carries besides its own: the target's (Kubernetes SD, relabelling). */
export const TARGET_LABELS = [
  'job',
  'instance',
  'namespace',
  'pod',
  'container',
  'service',
  'endpoint',
] as const

export interface ExportedMetrics {
  /** Every series name a node exports: histograms as `_bucket`, `_sum`, `_count`. */
  series: ReadonlySet<string>
  /** Label names of those series, the target's and `le` included. */
  labels: ReadonlySet<string>
}

/** What a node's `/metrics` can carry: the registry `createMetrics` builds, as a node does. */
export function exportedMetrics(): ExportedMetrics {
  const registry = new Registry()
  createMetrics(registry)
  const series = new Set<string>()
  const labels = new Set<string>(TARGET_LABELS)
  for (const metric of registry.getMetricsAsArray()) {
    const { name, labelNames } = metric as unknown as { name: string; labelNames: readonly string[] }
    const type = (metric as unknown as { type?: string }).type
    for (const label of labelNames ?? []) labels.add(label)
    if (type === 'histogram') {
      for (const suffix of ['_bucket', '_sum', '_count']) series.add(`${name}${suffix}`)
      labels.add('le')
    } else if (type === 'summary') {
      for (const suffix of ['', '_sum', '_count']) series.add(`${name}${suffix}`)
      labels.add('quantile')
    } else series.add(name)
  }
  registry.clear()
  return { series, labels }
}

/** What in `expr` is not exported: unknown metric names and label names, each once. */
export function unexported(expr: string, exported: ExportedMetrics): string[] {
  const { metrics, labels } = promqlNames(expr)
  return [
    ...new Set([
      ...metrics.filter((name) => !exported.series.has(name)).map((name) => `metric ${name}`),
      ...labels.filter((name) => !exported.labels.has(name)).map((name) => `label ${name}`),
    ]),
  ]
}
