/**
 * A strict reader of the Prometheus text exposition format (0.0.4): every line must be a comment,
 * a HELP/TYPE line, or a sample `name{labels} value [timestamp]`; anything else throws with the line.
 */

export interface MetricFamily {
  name: string
  type: string | undefined
  help: string | undefined
  samples: { name: string; labels: Record<string, string>; value: number }[]
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*'
const SAMPLE = new RegExp(`^(${NAME})(\\{(.*)\\})?\\s+(\\S+)(\\s+-?\\d+)?$`)
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,\s*|$)/
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])
const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count']

function parseValue(text: string, line: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY
  if (text === '-Inf') return Number.NEGATIVE_INFINITY
  if (text === 'NaN') return Number.NaN
  const value = Number(text)
  if (Number.isNaN(value)) throw new Error(`bad sample value in: ${line}`)
  return value
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {}
  let rest = text.trim()
  while (rest.length > 0) {
    const match = LABEL.exec(rest)
    if (match === null) throw new Error(`bad labels in: ${line}`)
    labels[match[1]!] = match[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\')
    rest = rest.slice(match[0].length)
  }
  return labels
}

export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>()
  const family = (name: string): MetricFamily => {
    let existing = families.get(name)
    if (existing === undefined) {
      existing = { name, type: undefined, help: undefined, samples: [] }
      families.set(name, existing)
    }
    return existing
  }
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line)
    if (meta !== null) {
      const [, kind, name, rest] = meta
      if (!new RegExp(`^${NAME}$`).test(name!)) throw new Error(`bad metric name in: ${line}`)
      if (kind === 'TYPE') {
        if (!TYPES.has(rest!)) throw new Error(`bad metric type in: ${line}`)
        family(name!).type = rest
      } else {
        family(name!).help = rest
      }
      continue
    }
    if (line.startsWith('#')) continue
    const sample = SAMPLE.exec(line)
    if (sample === null) throw new Error(`not a Prometheus sample: ${line}`)
    const sampleName = sample[1]!
    const base =
      [...families.keys()].find(
        (name) =>
          name === sampleName ||
          (['histogram', 'summary'].includes(families.get(name)!.type ?? '') &&
            HISTOGRAM_SUFFIXES.some((suffix) => sampleName === name + suffix)),
      ) ?? sampleName
    family(base).samples.push({
      name: sampleName,
      labels: sample[3] === undefined ? {} : parseLabels(sample[3], line),
      value: parseValue(sample[4]!, line),
    })
  }
  return families
}
