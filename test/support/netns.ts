/**
 * A private network for a test: one Linux bridge in a /24 of 10.213.0.0/16 that nothing else on
 * the machine uses, one network namespace per host with a veth pair to the bridge (`eth0` inside,
 * loopback up), and a hosts file per namespace, which `ip netns exec` bind-mounts over /etc/hosts
 * for the processes it starts. The root namespace holds the bridge's address, so the test reaches
 * every host directly. Everything created is recorded as it is created and removed by `close()`,
 * which a failed `createNetnsNetwork` calls itself.
 */

import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PhalanxError } from '@phalanx/errors'

export class IpCommandError extends PhalanxError<
  'ip_command_failed',
  { args: string[]; status: number | null; stderr: string }
> {
  override readonly name = 'IpCommandError'
  declare readonly args: string[]
  declare readonly status: number | null
  declare readonly stderr: string
  constructor(values: { args: string[]; status: number | null; stderr: string; cause?: unknown }) {
    const { cause, ...details } = values
    super('ip_command_failed', details, {
      message: `ip ${values.args.join(' ')} failed (status ${values.status}): ${values.stderr.trim()}`,
      cause,
    })
  }
}

export class SubnetExhaustedError extends PhalanxError<'subnet_exhausted', { tried: string[] }> {
  override readonly name = 'SubnetExhaustedError'
  declare readonly tried: string[]
  constructor(tried: string[]) {
    super(
      'subnet_exhausted',
      { tried },
      { message: `no free /24 in 10.213.0.0/16 after trying ${tried.join(', ')}` },
    )
  }
}

export class NetnsCleanupError extends AggregateError {
  readonly leftovers: string[]
  constructor(errors: unknown[], leftovers: string[]) {
    super(errors, `could not remove ${leftovers.join(', ')}`)
    this.name = 'NetnsCleanupError'
    this.leftovers = leftovers
  }
}

/** Creating the network failed, and removing what had been created failed too. */
export class NetnsSetupError extends PhalanxError<'netns_setup_failed', { leftovers: string[] }> {
  override readonly name = 'NetnsSetupError'
  /** The cleanup's own errors: an AggregateError, kept beside the (JSON) details. */
  readonly cleanup: NetnsCleanupError
  constructor(cause: unknown, cleanup: NetnsCleanupError) {
    super(
      'netns_setup_failed',
      { leftovers: cleanup.leftovers },
      {
        message: `creating the network failed (${String(cause)}); left behind: ${cleanup.leftovers.join(', ')}`,
        cause,
      },
    )
    this.cleanup = cleanup
  }
}

function ip(args: string[]): string {
  const result = spawnSync('ip', args, { encoding: 'utf8' })
  if (result.error !== undefined || result.status !== 0) {
    throw new IpCommandError({
      args,
      status: result.status,
      stderr: result.stderr ?? '',
      cause: result.error,
    })
  }
  return result.stdout
}

/** Why this process cannot create network namespaces, or undefined when it can (tried for real). */
export function netnsUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces are Linux-only (platform ${process.platform})`
  if (process.getuid?.() !== 0) return 'not root: creating network namespaces needs CAP_NET_ADMIN'
  const probe = `phalanx-probe-${randomBytes(4).toString('hex')}`
  try {
    ip(['netns', 'add', probe])
  } catch (error) {
    return `ip netns add failed: ${(error as Error).message}`
  }
  ip(['netns', 'delete', probe])
  return undefined
}

export interface NetnsHost {
  name: string
  /** The `ip netns` name. */
  netns: string
  address: string
}

export interface NetnsNetwork {
  /** `10.213.<x>.0/24` */
  subnet: string
  /** The bridge's address, in the root namespace. */
  gateway: string
  hosts: ReadonlyMap<string, NetnsHost>
  /** Replaces the namespace's /etc/hosts, as `ip netns exec` shows it, with these names per address. */
  writeHostsFile(host: string, entries: ReadonlyMap<string, readonly string[]>): void
  /** `ip netns exec` argv that runs `argv` in the host's namespace. */
  exec(host: string, argv: readonly string[]): string[]
  /** Removes the namespaces, veths, bridge and hosts files; processes inside must have exited. */
  close(): void
}

/** A /24 that no address or route of the root namespace touches (another test may hold one). */
function freeSubnet(): number {
  const used = ip(['-4', '-o', 'addr', 'show']) + ip(['-4', 'route', 'show', 'table', 'all'])
  const tried: string[] = []
  for (let attempt = 0; attempt < 32; attempt++) {
    const third = randomBytes(1)[0]!
    if (!used.includes(`10.213.${third}.`)) return third
    tried.push(`10.213.${third}.0/24`)
  }
  throw new SubnetExhaustedError(tried)
}

export function createNetnsNetwork(hostNames: readonly string[]): NetnsNetwork {
  // Interface names have at most 15 characters: a short random tag keeps concurrent tests apart.
  const tag = randomBytes(3).toString('hex')
  const bridge = `px${tag}br`
  const third = freeSubnet()
  const subnet = `10.213.${third}.0/24`
  const gateway = `10.213.${third}.1`
  const hosts = new Map<string, NetnsHost>()
  // Undo steps, newest last; close() runs them all in reverse and reports what it could not undo.
  const undo: { what: string; run: () => void }[] = []

  const network: NetnsNetwork = {
    subnet,
    gateway,
    hosts,
    writeHostsFile(host, entries) {
      const netns = hostOf(host).netns
      const lines = ['127.0.0.1 localhost', '::1 localhost ip6-localhost ip6-loopback']
      for (const [address, names] of entries) lines.push(`${address} ${names.join(' ')}`)
      writeFileSync(join('/etc/netns', netns, 'hosts'), `${lines.join('\n')}\n`)
    },
    exec(host, argv) {
      return ['ip', 'netns', 'exec', hostOf(host).netns, ...argv]
    },
    close() {
      const errors: unknown[] = []
      const leftovers: string[] = []
      for (const step of undo.splice(0).reverse()) {
        try {
          step.run()
        } catch (error) {
          errors.push(error)
          leftovers.push(step.what)
        }
      }
      if (errors.length > 0) throw new NetnsCleanupError(errors, leftovers)
    },
  }

  function hostOf(name: string): NetnsHost {
    const host = hosts.get(name)
    if (host === undefined) throw new RangeError(`no host ${name} in network ${subnet}`)
    return host
  }

  try {
    ip(['link', 'add', bridge, 'type', 'bridge'])
    undo.push({ what: `bridge ${bridge}`, run: () => ip(['link', 'delete', bridge]) })
    ip(['addr', 'add', `${gateway}/24`, 'dev', bridge])
    ip(['link', 'set', bridge, 'up'])
    hostNames.forEach((name, index) => {
      if (index + 10 > 254) throw new RangeError(`a /24 holds at most 245 hosts, not ${hostNames.length}`)
      const netns = `phalanx-${tag}-${name}`
      const address = `10.213.${third}.${index + 10}`
      const outside = `px${tag}v${index}`
      const inside = `px${tag}p${index}`
      ip(['netns', 'add', netns])
      undo.push({ what: `netns ${netns}`, run: () => ip(['netns', 'delete', netns]) })
      const hostsDir = join('/etc/netns', netns)
      mkdirSync(hostsDir, { recursive: true })
      undo.push({ what: hostsDir, run: () => rmSync(hostsDir, { recursive: true, force: true }) })
      ip(['link', 'add', outside, 'type', 'veth', 'peer', 'name', inside, 'netns', netns])
      // Deleting the namespace deletes the inside end, which deletes the pair: this undo step
      // matters only when the namespace could not be deleted.
      undo.push({
        what: `veth ${outside}`,
        run: () => {
          if (ip(['-o', 'link', 'show']).includes(` ${outside}@`)) ip(['link', 'delete', outside])
        },
      })
      ip(['link', 'set', outside, 'master', bridge, 'up'])
      ip(['-n', netns, 'link', 'set', inside, 'name', 'eth0'])
      ip(['-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0'])
      ip(['-n', netns, 'link', 'set', 'eth0', 'up'])
      ip(['-n', netns, 'link', 'set', 'lo', 'up'])
      hosts.set(name, { name, netns, address })
    })
  } catch (error) {
    try {
      network.close()
    } catch (cleanup) {
      throw new NetnsSetupError(error, cleanup as NetnsCleanupError)
    }
    throw error
  }
  return network
}
