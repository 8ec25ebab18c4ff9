/**
 * The one definition of what a run writes into `--out DIR`: the schema of `summary.json` and the
 * columns of `rounds.csv`, with what each field means, its unit and when it is empty. The writers
 * (`report.ts`) take their column order from here, the tests check what every run mode writes
 * against these schemas, and docs/OUTPUTS.md's tables are rendered from them (`outputsTables`,
 * `scripts/outputs-doc.ts`), so the documentation cannot drift from the files.
 */
import { z } from 'zod'

/** How an experiment runs its cells (`mode:` of a matrix). */
export const experimentModes = ['local', 'simulate'] as const
export type ExperimentMode = (typeof experimentModes)[number]

/** How the run that wrote a summary was made. */
export const runModes = ['local-cluster', 'single-process', 'node-process'] as const
export type RunMode = (typeof runModes)[number]

const count = z.int().nonnegative()
const seconds = z.number().nonnegative()

/** Where a result came from: what is needed to find the code and the command again. */
export const provenanceSchema = z
  .object({
    phalanxVersion: z.string().describe('version of the phalanx packages that ran (their package.json)'),
    gitCommit: z
      .string()
      .optional()
      .describe(
        'commit of the phalanx checkout the code ran from; absent when it did not run from one (an image, an unpacked copy) or git is not installed',
      ),
    gitDirty: z
      .boolean()
      .optional()
      .describe(
        'true when tracked files of that checkout differed from the commit; absent when `gitCommit` is',
      ),
    startedAt: z.iso.datetime().describe('when the run started, ISO 8601 in UTC'),
    host: z.string().describe('host name of the machine that wrote the file'),
    commandLine: z
      .array(z.string())
      .describe(
        'the process arguments, node binary first, credentials in URLs masked (`PHALANX_*` variables and the config file are in `config`, resolved)',
      ),
    seed: z.int().describe('the run seed (`config.seed`): with the config, what reproduces the run'),
    nodeVersion: z.string().describe('the Node.js version that ran it'),
  })
  .strict()
export type Provenance = z.infer<typeof provenanceSchema>

/** `summary.json`: one object per run. */
export const runSummarySchema = z
  .object({
    mode: z
      .enum(runModes)
      .describe(
        '`local-cluster` (`phalanx local`), `single-process` (`phalanx simulate`) or `node-process` (one `phalanx server` or `phalanx worker`)',
      ),
    provenance: provenanceSchema.describe('where the result came from'),
    honestAccuracy: z
      .number()
      .min(0)
      .max(1)
      .nullable()
      .describe(
        'final test accuracy (fraction), mean over the honest servers that finished; a node process: its own. null when nothing was evaluated (a worker, a Byzantine server, no honest server finished)',
      ),
    honestLoss: z
      .number()
      .nullable()
      .describe('final test loss (cross-entropy), as `honestAccuracy`; null when not evaluated'),
    finalModelSha256: z
      .string()
      .nullable()
      .optional()
      .describe(
        'sha256 of the final model (float32 little-endian): the one every honest server that finished holds; null when they differ; absent for a worker',
      ),
    finalModelSha256ByServer: z
      .record(z.string(), z.string())
      .optional()
      .describe('each honest server that finished, by node id: the sha256 of its final model'),
    rounds: count.describe(
      'rounds completed (rows of `rounds.csv`); fewer than `config.rounds` when the run was cut short',
    ),
    wallSeconds: seconds.describe('wall-clock seconds from start to the summary, start-up included'),
    maxHonestDrift: z
      .number()
      .nonnegative()
      .nullable()
      .describe(
        'largest `maxHonestDrift` of any round (ℓ2); null when never measured (one honest server, a worker, a Byzantine server)',
      ),
    rejectedMessages: z
      .record(z.string(), count)
      .describe(
        'messages rejected over the whole run, by reason (all nodes of a local cluster; a node process: its own); {} in `single-process`, which has no messages',
      ),
    backend: z
      .string()
      .describe(
        'TensorFlow.js backend that ran (`tensorflow`, `wasm`, `cpu`; `unknown` when no node reported one)',
      ),
    stragglers: z
      .array(z.string())
      .optional()
      .describe('`local-cluster`: honest servers still behind when the others had finished'),
    cpuSecondsPerRound: z
      .object({
        server: seconds
          .nullable()
          .optional()
          .describe('lower median CPU seconds per round of an honest server'),
        worker: seconds
          .nullable()
          .optional()
          .describe('lower median CPU seconds per round of an honest worker'),
      })
      .strict()
      .optional()
      .describe(
        'CPU (user + system) per round past the first three (start-up), by role; a node process: its own role only; null: no round past the start-up',
      ),
    interrupted: z
      .enum(['SIGINT', 'SIGTERM', 'aborted'])
      .optional()
      .describe(
        'present when the run was stopped before its last round, and the summary is that of the rounds completed: the signal that stopped the command (SIGINT, SIGTERM), or `aborted` when a program stopped it through its AbortSignal',
      ),
    divergedAtRound: count
      .optional()
      .describe('`single-process`: the round at which training blew up (non-finite), when it did'),
    experimentMode: z
      .enum(experimentModes)
      .optional()
      .describe(
        'a cell of `phalanx experiment`: the mode it ran in (a resumed grid reruns a cell of another mode)',
      ),
    nodeId: z.string().optional().describe('`node-process`: the node that wrote it'),
    role: z.enum(['server', 'worker']).optional().describe('`node-process`: its role'),
    byzantine: z.boolean().optional().describe('`node-process`: whether the config made this node Byzantine'),
    config: z
      .record(z.string(), z.unknown())
      .describe('the resolved config the run used (defaults, file, environment and flags), every field'),
  })
  .strict()
export type RunSummary = z.infer<typeof runSummarySchema>

/** `rounds.csv`: one row per completed round, in this column order; an empty cell is "not measured". */
export const roundRowSchema = z
  .object({
    round: count.describe('round index, from 0'),
    honestAccuracy: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .describe(
        'test accuracy (fraction), mean over the honest servers that evaluated this round; empty on rounds not evaluated (`evalEvery`), for a worker and a Byzantine server',
      ),
    honestLoss: z.number().optional().describe('test loss, as `honestAccuracy`'),
    maxHonestDrift: z
      .number()
      .nonnegative()
      .optional()
      .describe(
        'largest ℓ2 distance an honest server reported from its model of this round to another honest server’s (docs/OPERATIONS.md "What drift means"); empty with one honest server, for a worker and a Byzantine server, and in a node process that knows no other honest server (no `members`)',
      ),
    rejectedMessages: count
      .optional()
      .describe(
        'messages rejected in this round (not since the start), every reason, summed over all nodes of a local cluster (a node process: its own); empty in `single-process`, which has no messages',
      ),
    roundSeconds: seconds
      .optional()
      .describe(
        'seconds the round took at an honest server (a node process: itself); empty for the last rows a local cluster flushes without a report',
      ),
  })
  .strict()
export type RoundRow = z.infer<typeof roundRowSchema>

/** The columns of `rounds.csv`, in order. */
export const roundColumns = Object.keys(roundRowSchema.shape) as (keyof RoundRow)[]

/** The largest measured value (`undefined`: not measured); null when none was. */
export function maxMeasured(values: readonly (number | undefined)[]): number | null {
  const measured = values.filter((value): value is number => value !== undefined)
  return measured.length === 0 ? null : Math.max(...measured)
}

interface JsonSchema {
  type?: string | string[]
  format?: string
  enum?: unknown[]
  items?: JsonSchema
  properties?: Record<string, JsonSchema>
  additionalProperties?: JsonSchema | boolean
  required?: string[]
  description?: string
  minimum?: number
  maximum?: number
  anyOf?: JsonSchema[]
}

function typeText(schema: JsonSchema): string {
  if (schema.anyOf) return schema.anyOf.map(typeText).join(' or ')
  if (schema.enum) return `one of ${schema.enum.map((v) => `\`${String(v)}\``).join(', ')}`
  const types = (Array.isArray(schema.type) ? schema.type : [schema.type ?? 'any']).map((type) => {
    if (type === 'string' && schema.format === 'date-time') return 'string (ISO 8601 time)'
    if (type === 'array') return `array of ${typeText(schema.items ?? {})}`
    if (type === 'object' && schema.properties === undefined) {
      const values =
        typeof schema.additionalProperties === 'object' ? typeText(schema.additionalProperties) : 'any'
      return `object (name → ${values})`
    }
    if (type === 'integer' && schema.minimum === 0) return 'integer ≥ 0'
    if (type === 'number' && schema.minimum === 0 && schema.maximum === 1) return 'number in [0, 1]'
    if (type === 'number' && schema.minimum === 0) return 'number ≥ 0'
    return type
  })
  return types.join(' or ')
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ')

/** Table rows of an object schema, nested objects as `parent.child` rows after their parent. */
function fieldRows(schema: JsonSchema, prefix = ''): string[] {
  const required = new Set(schema.required ?? [])
  return Object.entries(schema.properties ?? {}).flatMap(([name, field]) => {
    const path = `${prefix}${name}`
    const row = `| \`${path}\` | ${cell(typeText(field))} | ${required.has(name) ? 'always' : 'optional'} | ${cell(field.description ?? '')} |`
    return [row, ...(field.properties === undefined ? [] : fieldRows(field, `${path}.`))]
  })
}

/** The markdown tables of docs/OUTPUTS.md, keyed by the file they describe. */
export function outputsTables(): Record<'summary.json' | 'rounds.csv', string> {
  const header = ['| field | type | present | meaning |', '| --- | --- | --- | --- |']
  const summary = z.toJSONSchema(runSummarySchema, { io: 'input' }) as JsonSchema
  const rounds = z.toJSONSchema(roundRowSchema, { io: 'input' }) as JsonSchema
  const roundsHeader = ['| column | type | empty | meaning |', '| --- | --- | --- | --- |']
  const roundsRequired = new Set(rounds.required ?? [])
  return {
    'summary.json': [...header, ...fieldRows(summary)].join('\n'),
    'rounds.csv': [
      ...roundsHeader,
      ...Object.entries(rounds.properties ?? {}).map(
        ([name, column]) =>
          `| \`${name}\` | ${cell(typeText(column))} | ${roundsRequired.has(name) ? 'never' : 'when not measured'} | ${cell(column.description ?? '')} |`,
      ),
    ].join('\n'),
  }
}

/** Markers around each generated table in docs/OUTPUTS.md (`scripts/outputs-doc.ts` fills them). */
export const outputsMarkers = (file: string) =>
  [`<!-- generated from packages/lab/src/outputs.ts: ${file} -->`, `<!-- end of ${file} -->`] as const
