/**
 * Operator commands that talk to a running cluster over NATS: `watch`, `chaos`, `admit`, `evict`.
 * Each takes `--nats-url` and `--cluster`, defaulting to `PHALANX_NATS_URL` and `PHALANX_CLUSTER`
 * so that the same command works from inside a pod (`kubectl exec … phalanx chaos kill server-1`).
 * `admit` and `evict` store operator-signed records (nodes apply nothing else); `keygen` makes
 * the operator key.
 */
import {
  type ChaosCommand,
  type ControlConnection,
  connectControl,
  connectedWithin,
  createMembershipStore,
  generateOperatorKey,
  loadOperatorKey,
  type OperatorKey,
  parseNatsServers,
  renderClusterTable,
  sendChaosCommand,
  signAdmitRecord,
  signEvictRecord,
  type TelemetryEvent,
  type TelemetryRefusal,
  watchTelemetry,
  writeOperatorKey,
} from '@phalanx/control'
import {
  attackStrengthFields,
  type ClusterConfig,
  configFieldHelp,
  envName,
  serverBehaviourNames,
  verifyPeerSignature,
  workerBehaviourNames,
  workerBehaviours,
} from '@phalanx/node'
import { Argument, type Command, InvalidArgumentError, Option } from 'commander'
import pino, { type Logger } from 'pino'
import { exitCodes } from './exit-codes.js'

interface ConnectionOptions {
  natsUrl?: string
  cluster: string
  natsCreds?: string
  natsNkeySeed?: string
  natsTlsCa?: string
  natsTlsCert?: string
  natsTlsKey?: string
}

/**
 * The credential and TLS flags: each is a node's config field under a shorter flag name, read
 * from the same `PHALANX_*` variable and described as the schema describes it, so a command run
 * inside a pod connects as that pod does.
 */
const NATS_FILE_FLAGS = [
  { flag: 'nats-creds', key: 'natsCreds', field: 'natsCredsFile', option: 'credsFile' },
  { flag: 'nats-nkey-seed', key: 'natsNkeySeed', field: 'natsNkeySeedFile', option: 'nkeySeedFile' },
  { flag: 'nats-tls-ca', key: 'natsTlsCa', field: 'natsTlsCaFile', option: 'caFile' },
  { flag: 'nats-tls-cert', key: 'natsTlsCert', field: 'natsTlsCertFile', option: 'certFile' },
  { flag: 'nats-tls-key', key: 'natsTlsKey', field: 'natsTlsKeyFile', option: 'keyFile' },
] as const satisfies readonly { flag: string; key: string; field: keyof ClusterConfig; option: string }[]

const fieldHelp = new Map(configFieldHelp().map((help) => [help.field, help]))
const describedAs = (field: keyof ClusterConfig) => fieldHelp.get(field)?.description ?? field

const COMMAND_DEFAULTS = {
  natsUrl: 'nats://127.0.0.1:4222',
  cluster: 'phalanx',
  // Long enough for a NATS pod restart, short enough that a typo'd URL fails visibly.
  connectTimeoutMs: 10_000,
  // How often `watch` redraws: telemetry arrives once per round per node, far more often.
  redrawMs: 1_000,
} as const

const chaosKinds = ['kill', 'pause', 'resume', 'corrupt', 'partition', 'heal'] as const

function stderrLogger(): Logger {
  return pino({ level: process.env.PHALANX_LOG_LEVEL ?? 'warn' }, pino.destination(2))
}

function positiveInt(value: string): number {
  const parsed = Number(value)
  if (!Number.isInteger(parsed) || parsed <= 0) throw new InvalidArgumentError('a positive integer')
  return parsed
}

function finiteNumber(value: string): number {
  const parsed = Number(value)
  if (value.trim() === '' || !Number.isFinite(parsed)) throw new InvalidArgumentError('a finite number')
  return parsed
}

function withConnectionOptions(command: Command): Command {
  command
    // commander shows the variable's name, never its value (a URL may hold a password).
    .addOption(
      new Option('--nats-url <url>', 'NATS URL, credentials as nats://user:pass@host:port')
        .default(COMMAND_DEFAULTS.natsUrl)
        .env(envName('natsUrl')),
    )
    .addOption(
      new Option('--cluster <id>', describedAs('cluster'))
        .default(COMMAND_DEFAULTS.cluster)
        .env(envName('cluster')),
    )
  for (const { flag, field } of NATS_FILE_FLAGS)
    command.addOption(new Option(`--${flag} <file>`, describedAs(field)).env(envName(field)))
  return command.addOption(
    new Option('--connect-timeout-ms <ms>', 'give up when NATS does not answer in time')
      .argParser(positiveInt)
      .default(COMMAND_DEFAULTS.connectTimeoutMs),
  )
}

/** `--operator-key FILE` (or `PHALANX_OPERATOR_KEY`): the key every control record is signed with. */
export function withOperatorKeyOption(command: Command): Command {
  return command.addOption(
    new Option(
      '--operator-key <file>',
      'operator key file (from `phalanx keygen`) that signs the record',
    ).env('PHALANX_OPERATOR_KEY'),
  )
}

/**
 * The operator key named by `--operator-key` or `PHALANX_OPERATOR_KEY`. Without one the command
 * fails here, before it dials NATS: nodes refuse unsigned control records, so sending one would
 * only be counted as an attack.
 */
export async function operatorKeyOf(
  options: { operatorKey?: string },
  operation: string,
): Promise<OperatorKey | undefined> {
  const path = options.operatorKey
  if (path === undefined || path === '') {
    console.error(
      `phalanx ${operation}: needs the operator key: --operator-key FILE or PHALANX_OPERATOR_KEY (make one with \`phalanx keygen --out FILE\`)`,
    )
    process.exitCode = exitCodes.usage.code
    return undefined
  }
  try {
    return await loadOperatorKey(path)
  } catch (error) {
    const err = error as Error
    console.error(`phalanx ${operation}: ${err.name}: ${err.message}`)
    process.exitCode = exitCodes.usage.code
    return undefined
  }
}

/** `<nodeId>:<peerId>` entries (the config's `members` format) as node id → peer id. */
function pinnedPeers(list: string): Map<string, string> {
  const pinned = new Map<string, string>()
  for (const entry of list.split(',').map((e) => e.trim())) {
    const separator = entry.indexOf(':')
    if (separator > 0) pinned.set(entry.slice(0, separator), entry.slice(separator + 1))
  }
  return pinned
}

/** The table of verified events, then what was not shown and why (absent when nothing was refused). */
export function renderWatch(
  events: readonly TelemetryEvent[],
  refused: Readonly<Record<TelemetryRefusal, number>>,
  nowMs: number,
): string {
  const table = renderClusterTable(events, { nowMs })
  const counts = Object.entries(refused).filter(([, count]) => count > 0)
  if (counts.length === 0) return table
  return `${table}\nnot shown: ${counts.map(([reason, count]) => `${reason} ${count}`).join(', ')}`
}

function natsUrlOf(options: ConnectionOptions): string {
  return options.natsUrl ?? COMMAND_DEFAULTS.natsUrl
}

/** Connects, runs `action`, closes; a failure becomes one line on stderr and its exit code (`exit-codes.ts`). */
async function withConnection(
  options: ConnectionOptions & { connectTimeoutMs: number },
  operation: string,
  action: (conn: ControlConnection) => Promise<void>,
): Promise<void> {
  let conn: ControlConnection
  try {
    conn = connectControl({
      servers: natsUrlOf(options),
      cluster: options.cluster,
      name: `phalanx-cli-${operation}`,
      log: stderrLogger(),
      ...natsFilesOf(options),
    })
  } catch (error) {
    // An unusable credentials or TLS file: named by its flag, nothing dialled.
    const err = error as Error
    console.error(`phalanx ${operation}: ${err.name}: ${err.message}`)
    process.exitCode = exitCodes.usage.code
    return
  }
  try {
    await connectedWithin(conn, options.connectTimeoutMs, operation)
    await action(conn)
  } catch (error) {
    const err = error as Error
    console.error(`phalanx ${operation}: ${err.name}: ${err.message}`)
    process.exitCode = exitCodes.failed.code
  } finally {
    await conn.close()
  }
}

/** The credential and TLS files from the flags (or their env variables), named by flag in errors. */
function natsFilesOf(
  options: ConnectionOptions,
): Pick<Parameters<typeof connectControl>[0], 'credsFile' | 'nkeySeedFile' | 'tls' | 'authOptionNames'> {
  const files: Partial<Record<(typeof NATS_FILE_FLAGS)[number]['option'], string>> = {}
  const authOptionNames: Record<string, string> = {}
  for (const { flag, key, option } of NATS_FILE_FLAGS) {
    const value = options[key]
    if (value !== undefined && value !== '') files[option] = value
    authOptionNames[option] = `--${flag}`
  }
  const { credsFile, nkeySeedFile, ...tls } = files
  return {
    ...(credsFile === undefined ? {} : { credsFile }),
    ...(nkeySeedFile === undefined ? {} : { nkeySeedFile }),
    ...(Object.keys(tls).length === 0 ? {} : { tls }),
    authOptionNames,
  }
}

function chaosCommandOf(kind: (typeof chaosKinds)[number], options: Record<string, unknown>): ChaosCommand {
  switch (kind) {
    case 'corrupt': {
      const attack = options.attack
      if (typeof attack !== 'string') throw new InvalidArgumentError('corrupt needs --attack <name>')
      // Already a finite number (`finiteNumber`); the node checks it against the attack's field.
      const strength = options.strength as number | undefined
      return { kind, attack, options: strength === undefined ? {} : { strength } }
    }
    case 'partition': {
      const durationMs = options.durationMs
      if (typeof durationMs !== 'number') throw new InvalidArgumentError('partition needs --duration-ms <n>')
      return { kind, durationMs }
    }
    default:
      return { kind }
  }
}

export function addControlCommands(program: Command): void {
  withConnectionOptions(
    program
      .command('watch')
      .description(
        'live table of the cluster from its telemetry: only events signed by the node they name are shown, the others counted',
      )
      .option('--duration-ms <ms>', 'stop after this long and print the final table', positiveInt)
      .addOption(
        new Option(
          '--members <list>',
          'comma-separated <nodeId>:<peerId> whose telemetry must be signed by that peer; other node ids are pinned to their first signed event',
        ).env(envName('members')),
      ),
  ).action(
    async (
      options: ConnectionOptions & { connectTimeoutMs: number; durationMs?: number; members?: string },
    ) =>
      withConnection(options, 'watch', async (conn) => {
        const tty = process.stdout.isTTY === true
        const pinned = pinnedPeers(options.members ?? '')
        const watch = await watchTelemetry({
          conn,
          verifyPeer: verifyPeerSignature,
          expectedPeerId: (nodeId) => pinned.get(nodeId),
        })
        console.error(
          `watching ${parseNatsServers(natsUrlOf(options)).servers.join(',')} cluster ${options.cluster}`,
        )
        let lastDrawn = ''
        const draw = () => {
          const table = renderWatch(watch.latest(), watch.refused(), Date.now())
          if (tty) process.stdout.write(`\x1b[2J\x1b[H${table}\n`)
          else if (table !== lastDrawn) console.log(`${table}\n`)
          lastDrawn = table
        }
        const timer = setInterval(draw, COMMAND_DEFAULTS.redrawMs)
        await new Promise<void>((resolve) => {
          const stop = () => resolve()
          process.once('SIGINT', stop)
          process.once('SIGTERM', stop)
          if (options.durationMs !== undefined) setTimeout(stop, options.durationMs)
        })
        clearInterval(timer)
        watch.stop()
        if (!tty) lastDrawn = ''
        draw()
      }),
  )

  withConnectionOptions(
    withOperatorKeyOption(program.command('chaos'))
      .description('send a chaos command to a node; prints whether it acknowledged')
      .addArgument(new Argument('<kind>', 'what the node does').choices(chaosKinds))
      .argument('<nodeId>', 'target node (server-<i> or worker-<suffix>)')
      .option(
        '--attack <name>',
        `corrupt: the attack to switch to (none = honest again); a server: ${serverBehaviourNames.join(', ')}; a worker: ${workerBehaviourNames.filter((name) => workerBehaviours[name].runtime).join(', ')}`,
      )
      .option(
        '--strength <number>',
        `corrupt: the attack's strength, checked like its config field (${Object.entries(attackStrengthFields)
          .map(([attack, field]) => `${attack}: ${field}`)
          .join(', ')})`,
        finiteNumber,
      )
      .option('--duration-ms <ms>', 'partition: how long before it heals', positiveInt)
      .option('--timeout-ms <ms>', 'how long to wait for the acknowledgement', positiveInt, 5_000),
  ).action(
    async (
      kind: (typeof chaosKinds)[number],
      nodeId: string,
      options: ConnectionOptions & {
        connectTimeoutMs: number
        timeoutMs: number
        operatorKey?: string
      } & Record<string, unknown>,
    ) => {
      let command: ChaosCommand
      try {
        command = chaosCommandOf(kind, options)
      } catch (error) {
        console.error(`phalanx chaos: ${(error as Error).message}`)
        process.exitCode = exitCodes.usage.code
        return
      }
      const operatorKey = await operatorKeyOf(options, 'chaos')
      if (operatorKey === undefined) return
      await withConnection(options, 'chaos', async (conn) => {
        const ack = await sendChaosCommand({
          conn,
          nodeId,
          command,
          operatorKey,
          timeoutMs: options.timeoutMs,
        })
        console.log(`${ack.nodeId} acknowledged ${ack.kind}`)
      })
    },
  )

  withConnectionOptions(
    withOperatorKeyOption(
      program
        .command('admit')
        .description('add a node to the member set: an operator-signed admit record in the members bucket')
        .argument('<nodeId>', 'node id (server-<i> or worker-<suffix>)')
        .argument('<peerId>', 'its libp2p peer id')
        .addOption(
          new Option('--role <role>', 'its role').choices(['server', 'worker']).makeOptionMandatory(),
        )
        .option('--multiaddr <addresses>', 'comma-separated multiaddrs where it listens', ''),
    ),
  ).action(
    async (
      nodeId: string,
      peerId: string,
      options: ConnectionOptions & {
        connectTimeoutMs: number
        role: 'server' | 'worker'
        multiaddr: string
        operatorKey?: string
      },
    ) => {
      const key = await operatorKeyOf(options, 'admit')
      if (key === undefined) return
      const multiaddrs = options.multiaddr.split(',').filter(Boolean)
      await withConnection(options, 'admit', async (conn) => {
        const record = signAdmitRecord(key, {
          cluster: options.cluster,
          member: { nodeId, peerId, role: options.role, multiaddrs },
        })
        const revision = await (await createMembershipStore({ conn })).putRecord(record)
        console.log(`admitted ${nodeId} (${peerId}) as ${options.role} at revision ${revision}`)
      })
    },
  )

  withConnectionOptions(
    withOperatorKeyOption(
      program
        .command('evict')
        .description('remove a peer from the member set: an operator-signed evict record (a tombstone)')
        .argument('<peerId>', 'its libp2p peer id'),
    ),
  ).action(
    async (
      peerId: string,
      options: ConnectionOptions & { connectTimeoutMs: number; operatorKey?: string },
    ) => {
      const key = await operatorKeyOf(options, 'evict')
      if (key === undefined) return
      await withConnection(options, 'evict', async (conn) => {
        const record = signEvictRecord(key, { cluster: options.cluster, peerId })
        await (await createMembershipStore({ conn })).putRecord(record)
        console.log(`evicted ${peerId}`)
      })
    },
  )

  program
    .command('keygen')
    .description('write a new operator key (Ed25519, PEM, mode 0600) and print its public key')
    .requiredOption('--out <file>', 'where to write the private key (an existing file is never overwritten)')
    .action(async (options: { out: string }) => {
      try {
        const key = generateOperatorKey()
        await writeOperatorKey(options.out, key)
        console.log(key.publicKey)
        console.error(
          `wrote ${options.out}; pin every node to it: PHALANX_OPERATOR_PUBLIC_KEY=${key.publicKey}`,
        )
      } catch (error) {
        const err = error as Error
        console.error(`phalanx keygen: ${err.name}: ${err.message}`)
        process.exitCode = exitCodes.failed.code
      }
    })
}
