/**
 * The alerts of k8s/overlays/monitoring behave as docs/OPERATIONS.md says: Prometheus's own
 * `promtool` checks the rendered PrometheusRule's groups and runs the unit tests of
 * test/fixtures/prometheus-rule-tests.yaml against them (series shaped as the nodes export them).
 * Every alert has a test that makes it fire. Skipped with the reason where promtool is missing
 * (scripts/system-deps.sh installs Debian's `prometheus` package for it).
 */
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { renderKustomization } from './support/k8s-render.js'

const repo = fileURLToPath(new URL('..', import.meta.url))
const fixture = join(repo, 'test/fixtures/prometheus-rule-tests.yaml')
const hasPromtool = spawnSync('sh', ['-c', 'command -v promtool']).status === 0
const dir = mkdtempSync(join(tmpdir(), 'phalanx-rules-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const rule = renderKustomization(join(repo, 'k8s/overlays/monitoring')).find(
  (o) => o.kind === 'PrometheusRule',
)!
const groups = (rule.spec as { groups: { name: string; rules: { alert: string }[] }[] }).groups

function promtool(...args: string[]) {
  return spawnSync('promtool', args, { cwd: dir, encoding: 'utf8', timeout: 60_000 })
}

describe('the PrometheusRule of k8s/overlays/monitoring', () => {
  writeFileSync(join(dir, 'rules.yaml'), stringify({ groups }))
  copyFileSync(fixture, join(dir, 'tests.yaml'))

  it('is a valid rule file', (context) => {
    if (!hasPromtool) return context.skip('promtool is not on PATH (Debian package prometheus)')
    const result = promtool('check', 'rules', 'rules.yaml')
    expect(result.stdout + result.stderr).toContain(
      `SUCCESS: ${groups.flatMap((g) => g.rules).length} rules found`,
    )
    expect(result.status).toBe(0)
  })

  it('fires each alert on the series that should set it off, and not before', (context) => {
    if (!hasPromtool) return context.skip('promtool is not on PATH (Debian package prometheus)')
    const result = promtool('test', 'rules', 'tests.yaml')
    expect(result.stdout + result.stderr).toContain('SUCCESS')
    expect(result.status, result.stdout + result.stderr).toBe(0)
  })

  it('has a test in which every alert fires', () => {
    const tests = parse(readFileSync(fixture, 'utf8')) as {
      tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[]
    }
    const firing = new Set(
      tests.tests.flatMap((test) =>
        test.alert_rule_test.filter((check) => check.exp_alerts.length > 0).map((check) => check.alertname),
      ),
    )
    expect([...firing].sort()).toEqual(groups.flatMap((g) => g.rules.map((r) => r.alert)).sort())
  })

  it('a broken alert fails the unit tests', (context) => {
    if (!hasPromtool) return context.skip('promtool is not on PATH (Debian package prometheus)')
    const broken = structuredClone(groups)
    const drift = broken.flatMap((g) => g.rules).find((r) => r.alert === 'PhalanxModelDrift') as unknown as {
      expr: string
    }
    drift.expr = drift.expr.replace('> 0.1', '> 0.9')
    writeFileSync(join(dir, 'rules.yaml'), stringify({ groups: broken }))
    try {
      const result = promtool('test', 'rules', 'tests.yaml')
      expect(result.status).not.toBe(0)
      expect(result.stdout + result.stderr).toContain('PhalanxModelDrift')
    } finally {
      writeFileSync(join(dir, 'rules.yaml'), stringify({ groups }))
    }
  })
})
