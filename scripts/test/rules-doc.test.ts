/**
 * docs/RULES.md cannot drift from the registries: each of its four parts has exactly one
 * `### \`name\`` section per name of its registry — none missing (a rule added without its
 * definition) and none extra (a section left behind by a rename) — and each rule's section
 * states the bound the registry enforces.
 */
import { readFileSync } from 'node:fs'
import { preAggregatorNames, ruleNames, rules } from '@phalanx/aggregation'
import { serverAttackNames, workerAttackNames } from '@phalanx/attacks'
import {
  serverAttackNames as serverBehaviourNames,
  workerAttackNames as workerBehaviourNames,
} from '@phalanx/node'
import { describe, expect, it } from 'vitest'

const doc = readFileSync(new URL('../../docs/RULES.md', import.meta.url), 'utf8')

/** The `##` part titled `title`: its text up to the next `##` heading. */
function part(title: string): string {
  const parts = doc.split(/^## /m)
  const found = parts.find((text) => text.startsWith(`${title}\n`))
  if (found === undefined) throw new Error(`docs/RULES.md has no part "## ${title}"`)
  return found
}

/** Names of the `### \`name\`` sections of a part, in order, with each section's text. */
function sections(title: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const text of part(title).split(/^### /m).slice(1)) {
    const name = /^`([^`]+)`/.exec(text)?.[1]
    if (name === undefined) throw new Error(`a section of "${title}" is not headed by a \`name\`: ${text}`)
    if (out.has(name)) throw new Error(`"${title}" has two sections for ${name}`)
    out.set(name, text)
  }
  return out
}

// `none` is a Byzantine node behaving honestly: a baseline, described in each part's preamble.
const behaviours = (...lists: readonly (readonly string[])[]) =>
  [...new Set(lists.flat())].filter((name) => name !== 'none').sort()

describe('docs/RULES.md covers every registry name', () => {
  it.each<{ title: string; names: readonly string[] }>([
    { title: 'Aggregation rules', names: ruleNames },
    { title: 'Pre-aggregators', names: preAggregatorNames },
    // The vector attacks of @phalanx/attacks and the cluster config's behaviours (which add
    // the protocol ones: label-flip, silence, equivocation; stale, crash).
    { title: 'Worker attacks', names: behaviours(workerAttackNames, workerBehaviourNames) },
    { title: 'Server attacks', names: behaviours(serverAttackNames, serverBehaviourNames) },
  ])('$title: one section per name, no other', ({ title, names }) => {
    expect([...sections(title).keys()].sort()).toEqual([...names].sort())
  })

  it.each(ruleNames)('%s: its section states the registry bound', (name) => {
    expect(sections('Aggregation rules').get(name)).toContain(`Bound: ${rules[name].boundText}`)
  })
})
