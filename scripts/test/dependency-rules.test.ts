/**
 * The import rules `npm run lint` checks (.dependency-cruiser.mjs) must be able to fail: each
 * fixture tree under fixtures/dependency-rules breaks them in known ways, and dependency-cruiser,
 * run as the lint script runs it (same config, same command), must report exactly those
 * violations — no fewer (a rule that cannot fail) and no more (an allowed import refused).
 */
import { execFile } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))
const configFile = join(root, '.dependency-cruiser.mjs')
const depcruise = join(root, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs')
const fixtures = fileURLToPath(new URL('./fixtures/dependency-rules/', import.meta.url))

interface Violation {
  type: string
  rule: { name: string }
  from: string
  to: string
  unresolvedTo?: string
  cycle?: { name: string }[]
}

/** What a violation says, in the words of the import that caused it. */
interface Finding {
  rule: string
  from: string
  /** The import as written; for a cycle, every file on it, sorted. */
  to: string
}

async function cruise(tree: string): Promise<Finding[]> {
  // The json reporter exits 0 whatever it finds; a non-zero exit is dependency-cruiser failing.
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [depcruise, '--config', configFile, '--output-type', 'json', 'packages'],
    { cwd: join(fixtures, tree), maxBuffer: 16 * 1024 * 1024 },
  )
  const violations = (JSON.parse(stdout) as { summary: { violations: Violation[] } }).summary.violations
  return violations
    .map((violation) => ({
      rule: violation.rule.name,
      from: violation.from,
      to:
        violation.type === 'cycle'
          ? [violation.from, ...(violation.cycle ?? []).map((step) => step.name)]
              .filter((name, index, all) => all.indexOf(name) === index)
              .sort()
              .join(' ')
          : (violation.unresolvedTo ?? violation.to),
    }))
    .sort((a, b) => `${a.rule} ${a.from} ${a.to}`.localeCompare(`${b.rule} ${b.from} ${b.to}`))
}

const sorted = (findings: Finding[]) =>
  [...findings].sort((a, b) => `${a.rule} ${a.from} ${a.to}`.localeCompare(`${b.rule} ${b.from} ${b.to}`))

describe('dependency rules (.dependency-cruiser.mjs)', () => {
  it.each<{ tree: string; expected: Finding[] }>([
    {
      tree: 'cycles',
      expected: [
        // Within a package, closed by a type-only import: type cycles count too.
        {
          rule: 'no-circular',
          from: 'packages/aggregation/src/a.ts',
          to: 'packages/aggregation/src/a.ts packages/aggregation/src/b.ts',
        },
        // Across packages (which also breaks both packages' layers).
        {
          rule: 'no-circular',
          from: 'packages/control/src/index.ts',
          to: 'packages/control/src/index.ts packages/net/src/index.ts',
        },
        { rule: 'layer-control', from: 'packages/control/src/index.ts', to: '@phalanx/net' },
        { rule: 'layer-net', from: 'packages/net/src/index.ts', to: '@phalanx/control' },
      ],
    },
    {
      tree: 'layering',
      // The index files import everything their package may (errors from anywhere, node, net
      // and control from lab, lab from cli) and must pass.
      expected: [
        { rule: 'layer-aggregation', from: 'packages/aggregation/src/imports-node.ts', to: '@phalanx/node' },
        { rule: 'layer-model', from: 'packages/model/src/imports-attacks.ts', to: '@phalanx/attacks' },
        { rule: 'layer-net', from: 'packages/net/src/imports-control.ts', to: '@phalanx/control' },
        // Tests are held to their package's layer too.
        { rule: 'layer-net', from: 'packages/net/test/imports-model.test.ts', to: '@phalanx/model' },
        { rule: 'layer-node', from: 'packages/node/src/imports-lab.ts', to: '@phalanx/lab' },
        {
          rule: 'no-relative-cross-package',
          from: 'packages/attacks/src/imports-relative.ts',
          to: '../../aggregation/src/index.js',
        },
        { rule: 'no-src-to-test', from: 'packages/node/src/imports-test.ts', to: '../test/helpers.js' },
        // A devDependency of the package, and a package its package.json does not list at all.
        {
          rule: 'no-src-to-dev-dependency',
          from: 'packages/node/src/imports-dev-dependency.ts',
          to: 'fast-check',
        },
        { rule: 'no-src-to-dev-dependency', from: 'packages/control/src/imports-undeclared.ts', to: 'pino' },
      ],
    },
  ])('$tree: reports exactly the planted violations', async ({ tree, expected }) => {
    expect(await cruise(tree)).toEqual(sorted(expected))
  })
})

describe('the layering table (mayImport) and the packages', () => {
  const packagesDir = join(root, 'packages')
  const names = readdirSync(packagesDir).filter((name) => existsSync(join(packagesDir, name, 'package.json')))
  const load = async () =>
    (await import(pathToFileURL(configFile).href)) as {
      mayImport: Record<string, string[]>
      allowedFor: (name: string) => string[]
    }

  it('has an entry for every package, so none escapes the layering rules', async () => {
    const { mayImport } = await load()
    expect(names.filter((name) => !(name in mayImport))).toEqual([])
  })

  it.each(names)(
    '%s: package.json and tsconfig.json references ask for no package it may not import',
    async (name) => {
      const { allowedFor } = await load()
      const manifest = JSON.parse(readFileSync(join(packagesDir, name, 'package.json'), 'utf8')) as Record<
        string,
        Record<string, string> | undefined
      >
      const declared = ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies']
        .flatMap((field) => Object.keys(manifest[field] ?? {}))
        .filter((dependency) => dependency.startsWith('@phalanx/'))
        .map((dependency) => dependency.slice('@phalanx/'.length))
      const tsconfig = JSON.parse(readFileSync(join(packagesDir, name, 'tsconfig.json'), 'utf8')) as {
        references?: { path: string }[]
      }
      const referenced = (tsconfig.references ?? []).map((reference) => reference.path.replace(/^\.\.\//, ''))
      const allowed = allowedFor(name)
      expect({
        declared: declared.filter((dependency) => !allowed.includes(dependency)),
        referenced: referenced.filter((reference) => !allowed.includes(reference)),
      }).toEqual({ declared: [], referenced: [] })
    },
  )
})
