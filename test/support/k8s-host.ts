/**
 * Runs the containers of planned pods (k8s-pods.ts) as host processes, without a kubelet or an
 * image: what makes a manifest's container runnable here, and nothing else.
 *
 * - The image: its ENTRYPOINT (when the container sets no command) and its ENV come from the
 *   caller's description of the image; executables the image has (`node`, `nats-server`, `sh`)
 *   and its directories (`/app`) map to the host files that stand in for them.
 * - Volumes: each pod volume is a directory under the pod's directory, shared by the pod's
 *   containers; ConfigMap and Secret volumes hold their files with the volume's mode. A mount
 *   path that exists on the host (`/tmp`) is bind-mounted over in the process's own mount
 *   namespace (`ip netns exec` gives it one), so the process sees the container path. A mount
 *   path that does not exist on the host (`/var/lib/phalanx`, `/etc/nats`, `/data`) cannot be
 *   mounted on without creating it in the host's root file system, so that path is rewritten to
 *   the directory wherever the container names it: argv, env values and the ConfigMap files
 *   mounted into the same container.
 * - Identity: the container's (else the pod's) runAsUser/runAsGroup, with the pod's fsGroup as
 *   supplementary group, through `setpriv`.
 */

import { type ChildProcess, spawn } from 'node:child_process'
import { chmodSync, chownSync, createWriteStream, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import { PhalanxError } from '@phalanx/errors'
import { type PlannedContainer, type PlannedPod, plannedMounts, type ServiceRecord } from './k8s-pods.js'
import type { K8sObject } from './k8s-render.js'
import type { NetnsNetwork } from './netns.js'

/** What of an image a container needs on the host. */
export interface ImageOnHost {
  /** The image's ENTRYPOINT: the command of a container that sets none. */
  entrypoint: string[]
  /** The image's ENV: the container's environment starts with it, the pod's env on top. */
  env: Record<string, string>
  /** Executables of the image, by the name or path a container runs → the host executable. */
  executables: Record<string, string>
  /** Directories of the image → the host directory with the same files. */
  directories: Record<string, string>
}

export class UnmappedImageError extends PhalanxError<
  'unmapped_image',
  { image: string; pod: string; container: string }
> {
  override readonly name = 'UnmappedImageError'
  declare readonly image: string
  declare readonly pod: string
  declare readonly container: string
  constructor(values: { image: string; pod: string; container: string }) {
    super('unmapped_image', values, {
      message: `${values.pod}/${values.container}: no host stand-in for image ${values.image}`,
    })
  }
}

export class UnmappedExecutableError extends PhalanxError<
  'unmapped_executable',
  { executable: string; image: string; pod: string; container: string }
> {
  override readonly name = 'UnmappedExecutableError'
  declare readonly executable: string
  declare readonly image: string
  declare readonly pod: string
  declare readonly container: string
  constructor(values: { executable: string; image: string; pod: string; container: string }) {
    super('unmapped_executable', values, {
      message: `${values.pod}/${values.container}: ${values.executable} of image ${values.image} has no host stand-in that exists`,
    })
  }
}

export class ContainerExitedError extends PhalanxError<
  'container_exited',
  {
    pod: string
    container: string
    exitCode: number | null
    signal: string | null
    tail: string
    waitingFor: string
  }
> {
  override readonly name = 'ContainerExitedError'
  declare readonly pod: string
  declare readonly container: string
  /** The process's exit code (`code` is the error's). */
  declare readonly exitCode: number | null
  declare readonly signal: NodeJS.Signals | null
  declare readonly tail: string
  constructor(values: {
    pod: string
    container: string
    exitCode: number | null
    signal: NodeJS.Signals | null
    tail: string
    waitingFor: string
  }) {
    super('container_exited', values, {
      message: `${values.pod}/${values.container} exited (code ${values.exitCode}, signal ${values.signal}) while waiting for ${values.waitingFor}; last output:\n${values.tail}`,
    })
  }
}

export class WaitTimeoutError extends PhalanxError<
  'wait_timeout',
  { pod: string; container: string; waitingFor: string; timeoutMs: number; last: string }
> {
  override readonly name = 'WaitTimeoutError'
  declare readonly pod: string
  declare readonly container: string
  declare readonly waitingFor: string
  declare readonly timeoutMs: number
  declare readonly last: string
  constructor(values: {
    pod: string
    container: string
    waitingFor: string
    timeoutMs: number
    last: string
  }) {
    super('wait_timeout', values, {
      message: `${values.pod}/${values.container}: no ${values.waitingFor} within ${values.timeoutMs} ms; last: ${values.last}`,
    })
  }
}

export interface HostContainer {
  pod: string
  container: string
  phase: PlannedContainer['phase']
  /** What runs inside the pod's namespace: the mount wrapper, setpriv, then the container's argv. */
  argv: string[]
  /** The container's own argv, mapped to the host (what `exec` finally runs). */
  command: string[]
  env: Record<string, string>
  /** Container paths replaced by host directories (they do not exist on the host). */
  rewritten: Record<string, string>
  /** Host directories bind-mounted over container paths that exist on the host. */
  bound: Record<string, string>
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** Replaces each path (as a whole path component prefix) by its host directory, in one pass. */
export function rewritePaths(text: string, paths: Record<string, string>): string {
  const keys = Object.keys(paths).sort((a, b) => b.length - a.length)
  if (keys.length === 0) return text
  const pattern = new RegExp(`(?<![\\w./-])(${keys.map(escapeRegExp).join('|')})(?=/|$|[^\\w.-])`, 'g')
  return text.replace(pattern, (path) => paths[path]!)
}

// Mounts each `<host dir> <container path> <ro|rw>` triple, then runs the rest of the argv.
const MOUNT_THEN_EXEC = [
  'while [ "$1" != -- ]; do',
  '  mount --bind "$1" "$2" || exit 125',
  '  if [ "$3" = ro ]; then mount -o remount,bind,ro "$2" || exit 125; fi',
  '  shift 3',
  'done',
  'shift',
  'exec "$@"',
].join('\n')

interface SecurityContext {
  runAsUser?: number
  runAsGroup?: number
  fsGroup?: number
}

/** The host command, environment and files of one planned container; writes the volumes' files. */
export function hostContainer(
  pod: PlannedPod,
  container: PlannedContainer,
  objects: K8sObject[],
  image: ImageOnHost | undefined,
  podDir: string,
): HostContainer {
  const where = { pod: pod.name, container: container.spec.name, image: container.spec.image }
  if (image === undefined) throw new UnmappedImageError(where)

  const mounts = plannedMounts(pod, container, objects)
  const podSecurity = (pod.podSpec.securityContext ?? {}) as SecurityContext
  const security = { ...podSecurity, ...((container.spec.securityContext ?? {}) as SecurityContext) }
  const rewritten: Record<string, string> = {}
  const bound: Record<string, string> = {}
  const binds: string[] = []
  const volumeDir = (volume: string) => join(podDir, 'volumes', volume)
  // Mounting over a host directory that holds the image's stand-ins (a checkout under /tmp, say)
  // would hide the very files the container runs: such a path is rewritten instead.
  const standIns = [...Object.values(image.directories), ...Object.values(image.executables)]
  const hidesStandIn = (mountPath: string) =>
    standIns.some((path) => path === mountPath || path.startsWith(`${mountPath.replace(/\/$/, '')}/`))
  for (const mount of mounts) {
    const dir = volumeDir(mount.volume)
    if (existsSync(mount.mountPath) && !hidesStandIn(mount.mountPath)) {
      bound[mount.mountPath] = dir
      binds.push(dir, mount.mountPath, mount.readOnly ? 'ro' : 'rw')
    } else {
      rewritten[mount.mountPath] = dir
    }
  }
  for (const mount of mounts) {
    const dir = volumeDir(mount.volume)
    mkdirSync(dir, { recursive: true })
    if (mount.source === 'emptyDir' || mount.source === 'claim') {
      // An emptyDir is world-writable; fsGroup would only add group ownership on top.
      chmodSync(dir, 0o777)
      continue
    }
    chmodSync(dir, 0o755)
    const mode = mount.mode ?? 0o644
    for (const [file, content] of Object.entries(mount.files)) {
      const path = join(dir, file)
      // Paths inside config files move with their volumes (a Secret may hold one: nats.conf).
      const isConfig = mount.source === 'configMap' || file.endsWith('.conf')
      // Anything else is written byte for byte: a Secret's file may be binary (a peer key).
      writeFileSync(path, isConfig ? rewritePaths(content.toString('utf8'), rewritten) : content)
      chmodSync(path, mode)
      // Kubernetes gives projected files to root with the pod's fsGroup: group-only modes need it.
      if (security.fsGroup !== undefined) chownSync(path, 0, security.fsGroup)
    }
  }

  const [first, ...rest] =
    container.spec.command === undefined ? [...image.entrypoint, ...container.argv] : container.argv
  const executable = first === undefined ? undefined : image.executables[first]
  if (first === undefined || executable === undefined || !existsSync(executable)) {
    throw new UnmappedExecutableError({ ...where, executable: first ?? '(none)' })
  }
  const argvPaths = { ...image.directories, ...rewritten }
  const command = [executable, ...rest.map((arg) => rewritePaths(arg, argvPaths))]

  const env: Record<string, string> = {
    // The image's PATH would name the image's directories; the host's finds the same tools.
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    // The kubelet sets it to the pod name.
    HOSTNAME: pod.name,
    ...image.env,
  }
  for (const [name, value] of Object.entries(container.env)) env[name] = rewritePaths(value, rewritten)

  const identity =
    security.runAsUser === undefined
      ? []
      : [
          'setpriv',
          `--reuid=${security.runAsUser}`,
          `--regid=${security.runAsGroup ?? security.runAsUser}`,
          security.fsGroup === undefined ? '--clear-groups' : `--groups=${security.fsGroup}`,
          '--',
        ]
  return {
    pod: pod.name,
    container: container.spec.name,
    phase: container.phase,
    argv: ['/bin/sh', '-c', MOUNT_THEN_EXEC, 'sh', ...binds, '--', ...identity, ...command],
    command,
    env,
    rewritten,
    bound,
  }
}

/**
 * The names a pod's /etc/hosts must hold to stand in for cluster DNS: every pod's own name (and
 * its StatefulSet DNS name), a headless Service's name for each pod behind it, and a ClusterIP
 * Service's name for the first pod behind it (no virtual IP, no load balancing).
 */
export function clusterHosts(
  pods: readonly PlannedPod[],
  services: readonly ServiceRecord[],
  addressOf: (pod: string) => string,
): Map<string, string[]> {
  const names = new Map<string, string[]>()
  const add = (pod: string, name: string) => {
    const address = addressOf(pod)
    const list = names.get(address) ?? []
    if (!list.includes(name)) list.push(name)
    names.set(address, list)
  }
  for (const pod of pods) {
    if (pod.hostname !== undefined) add(pod.name, pod.hostname)
    add(pod.name, pod.name)
  }
  for (const service of services) {
    for (const pod of service.headless ? service.pods : service.pods.slice(0, 1)) add(pod, service.name)
  }
  return names
}

/** `http://<address>:<port><path>` of an httpGet probe (a named port resolved in the container). */
export function httpGetUrl(
  container: PlannedContainer,
  probe: Record<string, unknown>,
  address: string,
): string {
  const httpGet = probe.httpGet as { path?: string; port: number | string; scheme?: string }
  const port =
    typeof httpGet.port === 'number'
      ? httpGet.port
      : container.spec.ports?.find((candidate) => candidate.name === httpGet.port)?.containerPort
  return `${(httpGet.scheme ?? 'HTTP').toLowerCase()}://${address}:${port}${httpGet.path ?? '/'}`
}

/** Where a probe checks: an httpGet's URL, or a tcpSocket's address and (named) port. */
export function probeTarget(
  container: PlannedContainer,
  probe: Record<string, unknown>,
  address: string,
): string | { host: string; port: number } {
  const tcp = probe.tcpSocket as { port: number | string } | undefined
  if (tcp === undefined) return httpGetUrl(container, probe, address)
  const port =
    typeof tcp.port === 'number'
      ? tcp.port
      : container.spec.ports?.find((candidate) => candidate.name === tcp.port)?.containerPort
  return { host: address, port: Number(port) }
}

/** Whether a TCP connection to the target opens (the kubelet's tcpSocket probe). */
function tcpOpens(target: { host: string; port: number }): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(target)
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** One container's process, started in its pod's network namespace, output kept and logged to a file. */
export class ContainerProcess {
  readonly host: HostContainer
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  readonly #child: ChildProcess
  readonly #lines: string[] = []
  readonly #listeners = new Set<(line: string) => void>()
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined

  constructor(network: NetnsNetwork, host: HostContainer, logFile: string) {
    this.host = host
    const log = createWriteStream(logFile)
    const [ip, ...args] = network.exec(host.pod, host.argv)
    this.#child = spawn(ip!, args, {
      env: host.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: stop() signals the container's process and anything it started.
      detached: true,
    })
    for (const stream of [this.#child.stdout!, this.#child.stderr!]) {
      let partial = ''
      stream.on('data', (chunk: Buffer) => {
        log.write(chunk)
        const text = partial + chunk.toString('utf8')
        const lines = text.split('\n')
        partial = lines.pop() ?? ''
        for (const line of lines) {
          this.#lines.push(line)
          for (const listener of this.#listeners) listener(line)
        }
      })
    }
    this.exited = new Promise((resolve) => {
      this.#child.on('error', () => {
        this.#exit ??= { code: null, signal: null }
        resolve(this.#exit)
      })
      // 'close', not 'exit': the last output lines are read by then.
      this.#child.on('close', (code, signal) => {
        this.#exit = { code, signal }
        for (const listener of this.#listeners) listener('')
        log.end()
        resolve(this.#exit)
      })
    })
  }

  get running(): boolean {
    return this.#exit === undefined
  }

  tail(lines = 30): string {
    return this.#lines.slice(-lines).join('\n')
  }

  exitedError(waitingFor: string): ContainerExitedError {
    return new ContainerExitedError({
      pod: this.host.pod,
      container: this.host.container,
      exitCode: this.#exit?.code ?? null,
      signal: this.#exit?.signal ?? null,
      tail: this.tail(),
      waitingFor,
    })
  }

  /** The first output line (already printed or to come) that matches, parsed by the caller. */
  waitForLine(matches: (line: string) => boolean, waitingFor: string, timeoutMs: number): Promise<string> {
    const seen = this.#lines.find(matches)
    if (seen !== undefined) return Promise.resolve(seen)
    if (!this.running) return Promise.reject(this.exitedError(waitingFor))
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer)
        this.#listeners.delete(listener)
      }
      const listener = (line: string) => {
        if (matches(line)) {
          done()
          resolve(line)
        } else if (!this.running) {
          done()
          reject(this.exitedError(waitingFor))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(
          new WaitTimeoutError({
            pod: this.host.pod,
            container: this.host.container,
            waitingFor,
            timeoutMs,
            last: this.tail(5),
          }),
        )
      }, timeoutMs)
      this.#listeners.add(listener)
    })
  }

  /** SIGTERM, then SIGKILL after the grace period (the pod's terminationGracePeriodSeconds). */
  async stop(graceMs: number): Promise<void> {
    if (!this.running || this.#child.pid === undefined) return
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        process.kill(-this.#child.pid!, signal)
      } catch {
        // The group is already gone.
      }
    }
    signalGroup('SIGTERM')
    const timer = setTimeout(() => signalGroup('SIGKILL'), graceMs)
    await this.exited
    clearTimeout(timer)
    // Anything the container started that outlived it.
    signalGroup('SIGKILL')
  }
}

/** Polls an httpGet probe from the root namespace until it succeeds, as the kubelet does. */
export async function waitForProbe(
  running: ContainerProcess,
  target: string | { host: string; port: number },
  options: { periodMs: number; timeoutMs: number },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs
  let last = 'no answer yet'
  const url = typeof target === 'string' ? target : `tcp://${target.host}:${target.port}`
  for (;;) {
    if (!running.running) throw running.exitedError(`probe ${url}`)
    if (typeof target !== 'string') {
      if (await tcpOpens(target)) return
      last = 'connection refused'
    } else
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(Math.max(options.periodMs, 5_000)) })
        last = `${response.status} ${(await response.text()).slice(0, 200)}`
        // The kubelet's success range for httpGet probes.
        if (response.status >= 200 && response.status < 400) return
      } catch (error) {
        last = String((error as Error).cause ?? error)
      }
    if (Date.now() > deadline) {
      throw new WaitTimeoutError({
        pod: running.host.pod,
        container: running.host.container,
        waitingFor: `probe ${url}`,
        timeoutMs: options.timeoutMs,
        last,
      })
    }
    await new Promise((resolve) => setTimeout(resolve, options.periodMs))
  }
}
