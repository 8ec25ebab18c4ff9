/**
 * docs/OPERATIONS.md matches the tree: every repository path it cites exists, every overlay in
 * k8s/overlays is described, every object of the "What gets deployed" table is an object the base
 * renders, and the alerts table lists exactly the alerts of the monitoring overlay.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { renderKustomization } from './support/k8s-render.js'

const repo = fileURLToPath(new URL('..', import.meta.url))
const doc = readFileSync(join(repo, 'docs/OPERATIONS.md'), 'utf8')

/** The text of one `## ` section, heading excluded. */
function section(heading: string): string {
  const start = doc.indexOf(`\n## ${heading}\n`)
  expect(start, heading).toBeGreaterThanOrEqual(0)
  const end = doc.indexOf('\n## ', start + 1)
  return doc.slice(start, end < 0 ? undefined : end)
}

describe('docs/OPERATIONS.md', () => {
  it('cites only paths that exist', () => {
    const cited = new Set(
      [
        ...doc.matchAll(
          /(?<![\w./-])(?:k8s|deploy|test|scripts|packages|docs)\/[A-Za-z0-9_./-]*[A-Za-z0-9_/]/g,
        ),
      ].map((match) => match[0]),
    )
    expect(cited.size).toBeGreaterThan(20)
    expect([...cited].filter((path) => !existsSync(join(repo, path)))).toEqual([])
  })

  it('describes every overlay there is', () => {
    const overlays = readdirSync(join(repo, 'k8s/overlays'))
    expect(overlays).toContain('monitoring')
    for (const overlay of overlays)
      expect(section('What gets deployed')).toContain(`\`k8s/overlays/${overlay}\``)
  })

  it('names in "What gets deployed" only objects the base renders, and every object it renders', () => {
    const table = section('What gets deployed')
      .split('\n')
      .filter((line) => line.startsWith('| '))
    const named = table.flatMap((line) =>
      [
        ...line
          .split(' | ')[0]!
          .matchAll(
            /(Namespace|ConfigMap|Secret|StatefulSet|Service|Deployment|PodDisruptionBudget|NetworkPolicy) `([a-z0-9-]+)`/g,
          ),
      ].map((match) => `${match[1]}/${match[2]}`),
    )
    const rendered = renderKustomization(join(repo, 'k8s/base')).map(
      (object) => `${object.kind}/${object.metadata.name}`,
    )
    expect(named.sort()).toEqual(rendered.sort())
  })

  it('lists exactly the alerts of the monitoring overlay', () => {
    const rule = renderKustomization(join(repo, 'k8s/overlays/monitoring')).find(
      (object) => object.kind === 'PrometheusRule',
    )!
    const alerts = (rule.spec as { groups: { rules: { alert: string }[] }[] }).groups.flatMap((group) =>
      group.rules.map((entry) => entry.alert),
    )
    const documented = [...section('Read metrics').matchAll(/^\| `(Phalanx\w+)`/gm)].map((match) => match[1])
    expect(documented.sort()).toEqual(alerts.sort())
  })
})
