import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { buildInfo, sourceCommit } from '../src/index.js'

const scratch = mkdtempSync(join(tmpdir(), 'phalanx-build-info-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))
const commit = 'a'.repeat(40)

describe('sourceCommit', () => {
  it.each<{ name: string; file: string | undefined; depth: number; expected: string }>([
    { name: 'a COMMIT file beside the code', file: `${commit}\n`, depth: 0, expected: commit },
    {
      name: 'a COMMIT file two directories up (the image: /app/COMMIT)',
      file: commit,
      depth: 2,
      expected: commit,
    },
    { name: 'a COMMIT file that holds no commit', file: 'dev build', depth: 0, expected: 'unknown' },
    // A scratch directory under /tmp: no COMMIT file above it and no git checkout.
    { name: 'neither file nor checkout', file: undefined, depth: 0, expected: 'unknown' },
  ])('$name → $expected', ({ name, file, depth, expected }) => {
    const root = join(scratch, name.replace(/\W+/g, '-'))
    const code = join(root, ...Array.from({ length: depth }, (_, i) => `d${i}`))
    mkdirSync(code, { recursive: true })
    if (file !== undefined) writeFileSync(join(root, 'COMMIT'), file)
    expect(sourceCommit(code)).toBe(expected)
  })

  it("is the checkout's HEAD in a git checkout without a COMMIT file", () => {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: import.meta.dirname,
      encoding: 'utf8',
    }).trim()
    expect(sourceCommit(import.meta.dirname)).toBe(head)
  })
})

it('buildInfo: the package version, this checkout, this Node.js', () => {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  expect(buildInfo()).toEqual({
    version,
    commit: sourceCommit(import.meta.dirname),
    nodejsVersion: process.version,
  })
})
