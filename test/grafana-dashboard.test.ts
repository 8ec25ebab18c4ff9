/**
 * The Grafana dashboard (k8s/overlays/monitoring/phalanx-dashboard.json) queries only what the nodes export: every
 * panel's PromQL is parsed with Prometheus's grammar and each metric and label it names must be
 * one a node's registry (`createMetrics`, Node's process metrics included) defines. A misspelt
 * name in a copy of the dashboard is caught, so the check can fail.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { exportedMetrics, grafanaToPromql, promqlNames, unexported } from './support/promql.js'

const path = fileURLToPath(new URL('../k8s/overlays/monitoring/phalanx-dashboard.json', import.meta.url))

interface Panel {
  type: string
  title: string
  datasource?: { type: string; uid: string }
  targets?: { expr: string; refId: string }[]
  panels?: Panel[]
}
interface Dashboard {
  uid: string
  panels: Panel[]
  templating: { list: { name: string; type: string; query?: unknown }[] }
}

const load = (text = readFileSync(path, 'utf8')) => JSON.parse(text) as Dashboard
/** Every panel, those inside collapsed rows too; rows themselves hold no query. */
const panelsOf = (dashboard: Dashboard): Panel[] =>
  dashboard.panels
    .flatMap((panel) => [panel, ...(panel.panels ?? [])])
    .filter((panel) => panel.type !== 'row')

/** Each query of the dashboard as PromQL, named by where it is. */
function queriesOf(dashboard: Dashboard): [string, string][] {
  const queries: [string, string][] = []
  for (const panel of panelsOf(dashboard)) {
    for (const target of panel.targets ?? [])
      queries.push([`${panel.title}/${target.refId}`, grafanaToPromql(target.expr)])
  }
  for (const variable of dashboard.templating.list) {
    if (variable.type !== 'query') continue
    const query = (variable.query as { query: string }).query
    // Grafana's label_values(metric, label): the metric as a selector, the label by its name.
    const match = /^label_values\((.+),\s*([a-zA-Z_]\w*)\)$/.exec(query)
    expect(match, `variable ${variable.name}: ${query}`).not.toBeNull()
    queries.push([`$${variable.name}`, `count by (${match![2]}) (${match![1]})`])
  }
  return queries
}

const exported = exportedMetrics()

describe('k8s/overlays/monitoring/phalanx-dashboard.json', () => {
  const dashboard = load()

  it('every panel queries Prometheus through the datasource variable', () => {
    const panels = panelsOf(dashboard)
    expect(panels.length).toBeGreaterThanOrEqual(10)
    for (const panel of panels) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0)
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JS template
      expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid: '${datasource}' })
    }
  })

  it('every query names only metrics and labels the nodes export', () => {
    const queries = queriesOf(dashboard)
    const missing = queries.flatMap(([where, expr]) =>
      unexported(expr, exported).map((name) => `${where}: ${name}`),
    )
    expect(missing).toEqual([])
  })

  it('shows what an operator looks for: progress, rejections, drift, payloads, CPU and heap', () => {
    const named = new Set(queriesOf(dashboard).flatMap(([, expr]) => promqlNames(expr).metrics))
    for (const metric of [
      'phalanx_rounds_total',
      'phalanx_round_current',
      'phalanx_rejected_messages_total',
      'phalanx_model_drift_ratio',
      'phalanx_payload_fetched_bytes_total',
      'phalanx_payload_served_bytes_total',
      'process_cpu_seconds_total',
      'nodejs_heap_size_used_bytes',
      'phalanx_build_info',
    ])
      expect(named, metric).toContain(metric)
  })

  it.each([
    [
      'a misspelt metric',
      'phalanx_rejected_messages_total',
      'phalanx_rejected_message_total',
      'metric phalanx_rejected_message_total',
    ],
    ['a label no series has', 'sum by (reason)', 'sum by (cause)', 'label cause'],
    ['a metric the nodes do not export', 'phalanx_round_current', 'phalanx_round', 'metric phalanx_round'],
  ])('a dashboard with %s fails, naming it', (_, from, to, named) => {
    const text = readFileSync(path, 'utf8')
    expect(text).toContain(from)
    const broken = load(text.replaceAll(from, to))
    const missing = queriesOf(broken).flatMap(([, expr]) => unexported(expr, exported))
    expect(missing).toContain(named)
  })

  it('a query Prometheus would refuse fails to parse', () => {
    expect(() => promqlNames('sum by (pod) (rate(phalanx_rounds_total[5m])')).toThrow(
      expect.objectContaining({ code: 'promql_parse' }),
    )
    expect(() => promqlNames('{__name__=~"phalanx_.*"}')).toThrow(
      expect.objectContaining({ code: 'promql_parse' }),
    )
  })
})
