/**
 * Offline validation of the deployment: the kustomize base and overlays in k8s/ render (with our
 * own renderer, cross-checked against `kubectl kustomize` where kubectl exists), validate against
 * the Kubernetes schemas, and agree with the config schema, the CLI and deploy/Dockerfile. Broken
 * manifests and Dockerfiles are fed in to show each check fails, naming the problem.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createMetrics, operatorPublicKeyObject, startOpsServer } from '@phalanx/control'
import { configFromEnv, isByzantine, resolveConfig } from '@phalanx/node'
import { Registry } from 'prom-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { baseNatsConfig, devNatsConfig, manifestPaths, secretsOf } from '../deploy/nats-config.js'
import {
  keysOf,
  membersValue,
  PINNED_SERVERS,
  peerIdOfKey,
  peerKeyPaths,
  peerKeysManifest,
  pinnedServers,
} from '../deploy/peer-keys.js'
import { checkDockerfile, checkManifests, type ManifestIssue, parseDockerfile } from './support/k8s-checks.js'
import { plannedMounts, planPods, serviceRecords } from './support/k8s-pods.js'
import { type K8sObject, objectId, parseManifests, renderKustomization } from './support/k8s-render.js'

const repo = fileURLToPath(new URL('..', import.meta.url))
const dockerfileText = readFileSync(join(repo, 'deploy/Dockerfile'), 'utf8')
const dockerfile = parseDockerfile(dockerfileText)
const cliPackage = JSON.parse(readFileSync(join(repo, 'packages/cli/package.json'), 'utf8')) as {
  version: string
  bin: Record<string, string>
}
const workspaces = readdirSync(join(repo, 'packages'))
  .filter((name) => existsSync(join(repo, 'packages', name, 'package.json')))
  .map((name) => `packages/${name}`)
const releaseImage = `ghcr.io/phalanx-ml/phalanx:${cliPackage.version}`
const cliBin = join(repo, 'packages/cli/dist/bin.js')

function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0
}
const hasKubectl = onPath('kubectl')
const hasNatsServer = onPath('nats-server')

/** The subcommands the built CLI lists in its help: what `args[0]` of a container may be. */
function cliCommands(): string[] {
  const help = execFileSync(process.execPath, [cliBin, '--help'], { encoding: 'utf8', timeout: 60_000 })
  const section = help.slice(help.indexOf('Commands:'))
  return [...section.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)].map((match) => match[1]!)
}

interface Target {
  dir: string
  image: string
  /** Pods per workload the render must plan: proves the checks ran over real pods. */
  pods: Record<string, number>
  byzantine: { servers: string[]; workers: number }
  chaos: boolean
}

const targets: Target[] = [
  {
    dir: 'k8s/base',
    image: releaseImage,
    pods: { nats: 3, server: 4, worker: 8, 'worker-byzantine': 0 },
    // No node is named: the schema's default (server-0) is Byzantine with attack none.
    byzantine: { servers: ['server-0'], workers: 0 },
    chaos: false,
  },
  {
    dir: 'k8s/overlays/dev',
    image: 'phalanx:dev',
    pods: { nats: 1, server: 4, worker: 4, 'worker-byzantine': 0 },
    byzantine: { servers: ['server-0'], workers: 0 },
    chaos: false,
  },
  {
    dir: 'k8s/overlays/monitoring',
    image: releaseImage,
    pods: { nats: 3, server: 4, worker: 8, 'worker-byzantine': 0 },
    byzantine: { servers: ['server-0'], workers: 0 },
    chaos: false,
  },
  {
    dir: 'k8s/overlays/chaos',
    image: releaseImage,
    pods: { nats: 3, server: 4, worker: 7, 'worker-byzantine': 1 },
    byzantine: { servers: ['server-3'], workers: 1 },
    chaos: true,
  },
]

let commands: string[] | undefined
let skipCliReason = ''

beforeAll(() => {
  if (existsSync(cliBin)) commands = cliCommands()
  else skipCliReason = `${relative(repo, cliBin)} is not built (npm test builds it first)`
})

function contextFor(image: string) {
  // Without the built CLI the command check uses the two commands the manifests need, and the
  // test that compares them with the CLI's help is skipped with its reason.
  return { dockerfile, image, cliCommands: commands ?? ['server', 'worker'] }
}

function byKey(objects: K8sObject[]): Map<string, K8sObject> {
  return new Map(objects.map((object) => [objectId(object), object]))
}

describe.each(targets)('$dir', (target) => {
  const objects = renderKustomization(join(repo, target.dir))

  it('renders exactly as kubectl kustomize does', (context) => {
    if (!hasKubectl) {
      context.skip('kubectl is not on PATH: the renderer is not compared with kustomize on this machine')
      return
    }
    const rendered = execFileSync('kubectl', ['kustomize', join(repo, target.dir)], { encoding: 'utf8' })
    const expected = byKey(parseManifests(rendered, target.dir) as K8sObject[])
    const actual = byKey(objects)
    expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort())
    for (const [key, object] of expected) expect(actual.get(key), key).toEqual(object)
  })

  it('passes the schema and every consistency check', () => {
    expect(checkManifests(objects, contextFor(target.image))).toEqual([])
  })

  it('plans the expected pods, each node named by its pod, Byzantine roles as configured', () => {
    const pods = planPods(objects)
    const perWorkload: Record<string, number> = {}
    for (const workload of objects.filter((o) => o.kind === 'StatefulSet' || o.kind === 'Deployment')) {
      perWorkload[workload.metadata.name] = pods.filter((pod) => pod.workload === workload).length
    }
    expect(perWorkload).toEqual(target.pods)

    const nodes = pods.flatMap((pod) =>
      pod.containers.filter((c) => c.phase === 'main' && c.env.PHALANX_NODE_ID),
    )
    for (const node of nodes) {
      expect(node.env.PHALANX_CHAOS).toBe(String(target.chaos))
      // No credentials in the URL: each pod has its role's nkey seed, from its role's Secret only.
      expect(node.env.PHALANX_NATS_URL).toBe('nats://nats.phalanx.svc.cluster.local:4222')
      expect(node.env.PHALANX_NATS_NKEY_SEED_FILE).toBe('/etc/phalanx/nats/seed')
      // Every bucket replicated on each NATS pod: more could not be placed, fewer loses state
      // with one pod.
      expect(resolveConfig(configFromEnv(node.env)).natsReplicas).toBe(target.pods.nats)
    }
    for (const pod of pods.filter((p) => p.containers.some((c) => c.env.PHALANX_NODE_ID))) {
      const role = pod.workload.metadata.name === 'server' ? 'server' : 'worker'
      const secrets = ((pod.podSpec.volumes as { secret?: { secretName: string } }[] | undefined) ?? [])
        .flatMap((volume) => volume.secret?.secretName ?? [])
        .filter((name) => name.startsWith('nats-user-'))
      expect(secrets, pod.name).toEqual([`nats-user-${role}`])
    }
    const server0 = pods.find((pod) => pod.name === 'server-0')!
    expect(server0.hostname).toBe('server-0.servers.phalanx.svc.cluster.local')
    expect(server0.containers.map((c) => [c.phase, c.env.PHALANX_NODE_ID, c.env.PHALANX_KEY_FILE])).toEqual([
      ['init', 'server-0', '/var/lib/phalanx/peer.key'],
      ['main', 'server-0', '/var/lib/phalanx/peer.key'],
    ])
    // Without the image's entrypoint, only what the manifest itself says.
    expect(server0.containers[1]!.argv).toEqual(['server'])
    const withEntrypoint = planPods(objects, { entrypoints: { [target.image]: dockerfile.entrypoint } })
    expect(withEntrypoint.find((pod) => pod.name === 'server-0')!.containers[1]!.argv).toEqual([
      'node',
      '/app/packages/cli/dist/bin.js',
      'server',
    ])

    // Each node decides from its own environment whether it is Byzantine, as the node does.
    const byzantine = nodes
      .map((node) => node.env.PHALANX_NODE_ID!)
      .filter((nodeId, i) => isByzantine(resolveConfig(configFromEnv(nodes[i]!.env)), nodeId))
    expect(byzantine.filter((id) => id.startsWith('server-'))).toEqual(target.byzantine.servers)
    expect(byzantine.filter((id) => id.startsWith('worker-byzantine-'))).toHaveLength(
      target.byzantine.workers,
    )
    expect(byzantine.filter((id) => id.startsWith('worker-'))).toHaveLength(target.byzantine.workers)
  })

  it('closes the member set: exactly the N servers, by the peer ids of their pinned keys; workers join', () => {
    const pods = planPods(objects)
    const nodes = pods.flatMap((pod) =>
      pod.containers
        .filter((c) => c.phase === 'main' && c.env.PHALANX_NODE_ID)
        .map((container) => ({ pod, container, config: resolveConfig(configFromEnv(container.env)) })),
    )
    const servers = nodes.filter(({ pod }) => pod.workload.metadata.name === 'server')
    expect(servers).toHaveLength(target.pods.server!)
    const members = servers[0]!.config.members
    expect(members.map((entry) => entry.split(':')[0])).toEqual(
      Array.from({ length: servers[0]!.config.servers }, (_, i) => `server-${i}`),
    )
    for (const { pod, container, config } of nodes) {
      // One member set everywhere, so every node gives every peer the same role.
      expect(config.members, pod.name).toEqual(members)
      expect(config.operatorPublicKey, pod.name).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect(() => operatorPublicKeyObject(config.operatorPublicKey!)).not.toThrow()
      // Workers register themselves; servers accept their joins.
      expect(container.env.PHALANX_WORKER_ADMISSION, pod.name).toBe('open')
      expect(config.workerAdmission).toBe('open')
    }
    for (const { pod } of servers) {
      // The key file the init container copies to PHALANX_KEY_FILE, byte for byte from the Secret.
      const init = pod.containers.find((c) => c.phase === 'init')!
      const keyMount = plannedMounts(pod, init, objects).find(
        (m) => m.mountPath === '/etc/phalanx/peer-keys',
      )!
      const key = keyMount.files[`${pod.name}.key`]
      expect(key, pod.name).toBeDefined()
      const peerId = peerIdOfKey(key!)
      expect(members, pod.name).toContain(`${pod.name}:${peerId}`)
      expect(init.argv.join(' ')).toContain('/etc/phalanx/peer-keys/$PHALANX_NODE_ID.key')
      expect(init.env.PHALANX_KEY_FILE).toBe(
        pod.containers.find((c) => c.phase === 'main')!.env.PHALANX_KEY_FILE,
      )
    }
    // No worker can be listed (Deployment pods): each is a member through its own join only.
    expect(members.filter((entry) => entry.startsWith('worker-'))).toEqual([])
  })

  it('resolves every name a node dials, and every file a container mounts', () => {
    const pods = planPods(objects)
    const records = new Map(serviceRecords(objects, pods).map((record) => [record.name, record]))
    const nats = records.get('nats.phalanx.svc.cluster.local')!
    expect(nats.pods).toHaveLength(target.pods.nats!)
    // No monitoring port.
    expect(nats.ports).toEqual([{ name: 'client', port: 4222, targetPort: 4222 }])
    expect(records.get('servers.phalanx.svc.cluster.local')).toMatchObject({
      headless: true,
      pods: ['server-0', 'server-1', 'server-2', 'server-3'],
    })

    const server0 = pods.find((pod) => pod.name === 'server-0')!
    const [init, main] = server0.containers
    expect(plannedMounts(server0, init!, objects).map((m) => [m.mountPath, m.source, m.readOnly])).toEqual([
      ['/etc/phalanx/peer-keys', 'secret', true],
      ['/var/lib/phalanx', 'claim', false],
    ])
    expect(plannedMounts(server0, main!, objects).map((m) => [m.mountPath, m.source])).toEqual([
      ['/var/lib/phalanx', 'claim'],
      ['/tmp', 'emptyDir'],
      ['/etc/phalanx/nats', 'secret'],
    ])
    const nats0 = pods.find((pod) => pod.name === 'nats-0')!
    const natsMounts = plannedMounts(nats0, nats0.containers[0]!, objects)
    expect(natsMounts.map((m) => [m.mountPath, m.source])).toEqual([
      ['/etc/nats', 'secret'],
      ['/data', 'claim'],
    ])
    // The config of the manifests is the one deploy/nats-config.ts renders from permissions.ts.
    const secrets = secretsOf(readFileSync(join(repo, manifestPaths.base), 'utf8'))
    const expected = target.dir === 'k8s/overlays/dev' ? devNatsConfig(secrets) : baseNatsConfig(secrets)
    expect(natsMounts[0]!.files['nats.conf']?.toString('utf8')).toBe(expected)
    expect(nats0.containers[0]!.argv).toEqual(['nats-server', '--config', '/etc/nats/nats.conf'])
  })

  it('gives nats-server a config it accepts, with the pod env', (context) => {
    if (!hasNatsServer) {
      context.skip('nats-server is not on PATH: the NATS config is not checked by nats-server -t here')
      return
    }
    const pods = planPods(objects)
    const nats = pods.find((pod) => pod.name === 'nats-0')!.containers[0]!
    const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === 'nats-server-config')!
    const dir = mkdtempSync(join(tmpdir(), 'phalanx-nats-conf-'))
    try {
      writeFileSync(join(dir, 'nats.conf'), (secret.stringData as Record<string, string>)['nats.conf']!)
      const result = spawnSync('nats-server', ['-t', '-c', join(dir, 'nats.conf')], {
        env: { PATH: process.env.PATH, ...nats.env },
        encoding: 'utf8',
      })
      expect(result.stderr + result.stdout).toContain('is valid')
      expect(result.status).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

it('the pinned keys and the member set are what deploy/peer-keys.ts writes from those keys', async () => {
  const manifest = readFileSync(join(repo, peerKeyPaths.secret), 'utf8')
  const keys = keysOf(manifest)
  expect(Object.keys(keys)).toEqual(Array.from({ length: PINNED_SERVERS }, (_, i) => `server-${i}`))
  const servers = await pinnedServers(keys)
  expect(peerKeysManifest(servers)).toBe(manifest)
  const kustomization = readFileSync(join(repo, peerKeyPaths.kustomization), 'utf8')
  expect(kustomization).toContain(`- PHALANX_MEMBERS=${membersValue(servers)}\n`)
  // Marked as examples, like the NATS seeds.
  expect(manifest).toContain('EXAMPLE KEYS')
})

it('the commands the containers run are commands of the built CLI', (context) => {
  if (commands === undefined) {
    context.skip(skipCliReason)
    return
  }
  expect(commands).toEqual(expect.arrayContaining(['server', 'worker']))
})

it("the probe and scrape paths of the manifests are served by the nodes' ops endpoints", async () => {
  const paths = new Set<string>()
  for (const target of targets) {
    for (const object of renderKustomization(join(repo, target.dir))) {
      const annotations = [
        object.metadata.annotations,
        (object.spec as { template?: { metadata?: { annotations?: Record<string, string> } } } | undefined)
          ?.template?.metadata?.annotations,
      ]
      for (const annotation of annotations) {
        if (annotation?.['prometheus.io/path'] !== undefined) paths.add(annotation['prometheus.io/path'])
      }
    }
    for (const pod of planPods(renderKustomization(join(repo, target.dir)))) {
      for (const container of pod.containers) {
        if (container.env.PHALANX_OPS_PORT === undefined) continue
        for (const probe of [
          container.spec.readinessProbe,
          container.spec.livenessProbe,
          container.spec.startupProbe,
        ]) {
          const path = (probe?.httpGet as { path?: string } | undefined)?.path
          if (path !== undefined) paths.add(path)
        }
      }
    }
  }
  expect([...paths].sort()).toEqual(['/healthz', '/metrics', '/readyz'])
  // The same ops server the nodes run (@phalanx/control), on an ephemeral port.
  const registry = new Registry()
  createMetrics(registry, { defaultMetrics: false })
  const ops = await startOpsServer({ registry, ready: () => true, port: 0 })
  try {
    for (const path of paths) {
      const response = await fetch(`${ops.url}${path}`)
      expect(response.status, path).toBe(200)
    }
  } finally {
    await ops.close()
  }
})

describe('deploy/Dockerfile', () => {
  it('packages the CLI: node 20 slim, non-root, entrypoint, healthcheck, ports', () => {
    expect(checkDockerfile(dockerfile, cliPackage, workspaces)).toEqual([])
    expect(workspaces).toContain('packages/cli')
    expect(dockerfile.exposed).toEqual([9000, 9001, 9464])
    expect(dockerfile.user).toEqual({ uid: 10001, gid: 10001 })
  })

  // Each variant breaks one thing in the real Dockerfile's text.
  it.each([
    ['runs as root', (t: string) => t.replace('USER 10001:10001', 'USER root'), 'USER', 'root'],
    [
      'points at a file the CLI does not ship',
      (t: string) => t.replace('"/app/packages/cli/dist/bin.js"]', '"/app/packages/cli/bin.js"]'),
      'ENTRYPOINT',
      '/app/packages/cli/dist/bin.js',
    ],
    [
      'forgets a workspace before npm ci',
      (t: string) => t.replace('COPY packages/net/package.json packages/net/\n', ''),
      'COPY',
      'packages/net/package.json',
    ],
    [
      'exposes no ops port',
      (t: string) => t.replace('EXPOSE 9000 9001 9464', 'EXPOSE 9000 9001'),
      'EXPOSE',
      '9464',
    ],
    [
      'runs on a full Node image',
      (t: string) => t.replace('NODE_IMAGE=node:20-bookworm-slim', 'NODE_IMAGE=node:20'),
      'FROM',
      'node:20',
    ],
    [
      'checks a path that is not served',
      (t: string) => t.replace("'/healthz'", "'/health'"),
      'HEALTHCHECK',
      '/healthz',
    ],
    [
      'sets a variable the schema does not know',
      (t: string) =>
        t.replace('PHALANX_OPS_PORT=9464', 'PHALANX_OPS_PORT=9464 \\\n    PHALANX_METRICS_PORT=9464'),
      'ENV',
      'PHALANX_METRICS_PORT',
    ],
  ])('a Dockerfile that %s fails, naming it', (_, breakIt, object, named) => {
    const broken = breakIt(dockerfileText)
    expect(broken).not.toBe(dockerfileText)
    const issues = checkDockerfile(parseDockerfile(broken), cliPackage, workspaces)
    expect(issues.filter((issue) => issue.object === object && issue.message.includes(named))).not.toEqual([])
  })
})

/** The base's PHALANX_MEMBERS entries. */
function baseMembers(): string[] {
  const configMap = renderKustomization(join(repo, 'k8s/base')).find((o) => o.kind === 'ConfigMap')!
  return (configMap.data as Record<string, string>).PHALANX_MEMBERS!.split(',')
}

/** The member set with server-0's and server-1's peer ids swapped: each names the other's key. */
function swappedMembers(): string {
  const [first, second, ...rest] = baseMembers().map((entry) => entry.split(':'))
  return [`server-0:${second![1]}`, `server-1:${first![1]}`, ...rest.map((entry) => entry.join(':'))].join(
    ',',
  )
}

describe('a broken manifest fails validation, naming the problem', () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'phalanx-k8s-broken-'))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  /** A real overlay on k8s/overlays/dev with one patch: what an operator's mistake looks like. */
  function renderBroken(
    name: string,
    patch: string,
    literals: string[] = [],
    base = 'k8s/overlays/dev',
  ): K8sObject[] {
    const overlay = join(dir, name)
    mkdirSync(overlay)
    writeFileSync(join(overlay, 'patch.yaml'), patch)
    const kustomization = [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      'resources:',
      `  - ${relative(overlay, join(repo, base))}`,
      ...(patch === '' ? [] : ['patches:', '  - path: patch.yaml']),
      ...(literals.length === 0
        ? []
        : [
            'configMapGenerator:',
            '  - name: cluster-config',
            '    behavior: merge',
            '    literals:',
            ...literals.map((l) => `      - ${l}`),
          ]),
    ].join('\n')
    writeFileSync(join(overlay, 'kustomization.yaml'), `${kustomization}\n`)
    return renderKustomization(overlay)
  }

  const serverPatch = (container: string) => `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: server
spec:
  template:
    spec:
      containers:
        - name: server
${container
  .split('\n')
  .map((line) => `          ${line}`)
  .join('\n')}
`

  const monitoring = 'k8s/overlays/monitoring'
  /** The monitoring overlay's PrometheusRule with one alert, of this expression. */
  const rulePatch = (alert: string, expr: string) => `apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: phalanx
spec:
  groups:
    - name: phalanx.test
      rules:
        - alert: ${alert}
          expr: ${expr}
`
  const cases: {
    name: string
    patch: string
    literals?: string[]
    /** The overlay the case patches (k8s/overlays/dev when absent). */
    base?: string
    rule: ManifestIssue['rule']
    named: string
  }[] = [
    {
      name: 'pdb-other-quorum',
      patch: '',
      // N = 7, F = 2 without touching the PDB: it must follow N−F (and the rest complains too).
      literals: ['PHALANX_SERVERS=7', 'PHALANX_BYZANTINE_SERVERS=2'],
      rule: 'pdb-quorum',
      named: 'N−F is 7−2 = 5',
    },
    {
      name: 'label-missing',
      patch:
        'apiVersion: v1\nkind: Service\nmetadata:\n  name: servers\n  labels:\n    app.kubernetes.io/component: null\n',
      rule: 'labels',
      named: 'has no app.kubernetes.io/component',
    },
    {
      name: 'label-version',
      patch: `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: server
spec:
  template:
    metadata:
      labels:
        app.kubernetes.io/version: 0.0.9
`,
      rule: 'labels',
      named: 'app.kubernetes.io/version is 0.0.9, expected 0.1.0',
    },
    {
      name: 'state-emptydir',
      patch: `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: server
spec:
  volumeClaimTemplates: null
  template:
    spec:
      volumes:
        - name: state
          emptyDir: {}
`,
      rule: 'server-state',
      named: 'is not on a PersistentVolumeClaim (volume state)',
    },
    {
      name: 'double-scrape-service',
      patch: `apiVersion: v1
kind: Service
metadata:
  name: server-metrics
  annotations:
    prometheus.io/scrape: "true"
    prometheus.io/port: "9464"
    prometheus.io/path: /metrics
`,
      rule: 'prometheus',
      named: 'scraped 2 times: by its pod annotations and by Service/phalanx/server-metrics',
    },
    {
      name: 'double-scrape-monitor',
      base: monitoring,
      patch: `apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  template:
    metadata:
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "9464"
        prometheus.io/path: /metrics
`,
      rule: 'prometheus',
      named: 'by its pod annotations and by PodMonitor/phalanx/phalanx',
    },
    {
      name: 'monitor-port',
      base: monitoring,
      patch: `apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata:
  name: phalanx
spec:
  podMetricsEndpoints:
    - port: p2p
      path: /metrics
`,
      rule: 'pod-monitor',
      named: 'port "p2p" is not server-0\'s ops port 9464',
    },
    {
      name: 'alert-metric',
      base: monitoring,
      patch: rulePatch('PhalanxRoundsStalled', 'sum by (namespace) (rate(phalanx_round_total[5m])) == 0'),
      rule: 'alert-rule',
      named: 'metric phalanx_round_total is not exported',
    },
    {
      name: 'alert-syntax',
      base: monitoring,
      patch: rulePatch('PhalanxModelDrift', 'max by (pod) (phalanx_model_drift_ratio > 0.1'),
      rule: 'alert-rule',
      named: 'not PromQL',
    },
    {
      name: 'unknown-env',
      patch: serverPatch('env:\n  - name: PHALANX_NUM_SERVERS\n    value: "4"'),
      rule: 'unknown-env-var',
      named: 'PHALANX_NUM_SERVERS',
    },
    { name: 'bad-rule', patch: '', literals: ['PHALANX_RULE=krumm'], rule: 'invalid-config', named: 'rule' },
    {
      name: 'too-few-servers',
      patch: '',
      literals: ['PHALANX_SERVERS=3'],
      rule: 'invalid-config',
      named: 'N−F ≥ 2F+1',
    },
    {
      name: 'wrong-ops-port',
      patch: serverPatch('ports:\n  - name: ops\n    containerPort: 9465'),
      rule: 'container-port',
      named: '9465',
    },
    {
      name: 'service-target',
      patch: `apiVersion: v1
kind: Service
metadata:
  name: server-metrics
spec:
  ports:
    - name: ops
      port: 9464
      targetPort: metrics
`,
      rule: 'service-port',
      named: '"metrics"',
    },
    {
      name: 'probe-path',
      patch: serverPatch('readinessProbe:\n  httpGet:\n    path: /ready\n    port: ops'),
      rule: 'probe-endpoint',
      named: '/ready',
    },
    {
      name: 'invalid-field-type',
      patch: serverPatch('ports:\n  - name: extra\n    containerPort: nine-thousand'),
      rule: 'schema',
      named: 'containerPort must be integer',
    },
    {
      name: 'misspelt-field',
      patch: serverPatch('readinesProbe:\n  httpGet:\n    path: /readyz\n    port: ops'),
      rule: 'unknown-field',
      named: 'containers[0].readinesProbe',
    },
    {
      name: 'misspelt-nested-field',
      patch: serverPatch('securityContext:\n  capabilities:\n    dorp: ["ALL"]'),
      rule: 'unknown-field',
      named: 'securityContext.capabilities.dorp',
    },
    {
      name: 'pdb',
      patch: `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: server
spec:
  minAvailable: 2
`,
      rule: 'pdb-quorum',
      named: 'N−F is 4−1 = 3',
    },
    {
      name: 'bootstrap',
      patch: '',
      literals: [
        'PHALANX_BOOTSTRAP=/dns4/server-0.servers.phalanx.svc.cluster.local/tcp/9000,/dns4/server-4.servers.phalanx.svc.cluster.local/tcp/9000',
      ],
      rule: 'bootstrap-target',
      named: 'server-4.servers',
    },
    {
      name: 'replicas',
      patch: 'apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: server\nspec:\n  replicas: 5\n',
      rule: 'replicas',
      named: 'PHALANX_SERVERS=4',
    },
    { name: 'command', patch: serverPatch('args: ["serve"]'), rule: 'cli-command', named: '"serve"' },
    {
      name: 'image',
      patch: serverPatch('image: ghcr.io/phalanx-ml/phalanx:0.0.9'),
      rule: 'image',
      named: 'phalanx:0.0.9',
    },
    {
      name: 'root-fs',
      patch: serverPatch('securityContext:\n  readOnlyRootFilesystem: false'),
      rule: 'security',
      named: 'readOnlyRootFilesystem',
    },
    {
      name: 'key-file',
      patch: serverPatch('env:\n  - name: PHALANX_KEY_FILE\n    value: /app/peer.key'),
      rule: 'writable-path',
      named: '/app/peer.key',
    },
    {
      name: 'nats-url',
      patch: serverPatch(
        'env:\n  - name: PHALANX_NATS_URL\n    value: nats://$(NATS_USER):$(NATS_PASSWORD)@nats-client.phalanx.svc.cluster.local:4222',
      ),
      rule: 'nats-url',
      named: 'nats-client.phalanx',
    },
    {
      name: 'env-order',
      patch: serverPatch('env:\n  - name: PHALANX_OUT\n    value: /var/lib/phalanx/$(RUN_NAME)'),
      rule: 'env-reference',
      named: '$(RUN_NAME)',
    },
    {
      name: 'byzantine-id',
      patch: '',
      literals: ['PHALANX_BYZANTINE_NODE_IDS=server-7'],
      rule: 'byzantine-ids',
      named: 'server-7',
    },
    {
      name: 'members-swapped',
      patch: '',
      literals: [`PHALANX_MEMBERS=${swappedMembers()}`],
      rule: 'member-set',
      named: "server-0's pinned key is peer",
    },
    {
      name: 'members-short',
      patch: '',
      literals: [`PHALANX_MEMBERS=${baseMembers().slice(0, 3).join(',')}`],
      rule: 'member-set',
      named: 'needs exactly server-0, server-1, server-2, server-3',
    },
    {
      name: 'no-pinned-key',
      patch: 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: peer-keys\ndata:\n  server-2.key: null\n',
      rule: 'member-set',
      named: 'server-2: no pinned key',
    },
    {
      name: 'no-operator-key',
      patch:
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cluster-config\ndata:\n  PHALANX_OPERATOR_PUBLIC_KEY: null\n',
      rule: 'operator-key',
      named: 'no PHALANX_OPERATOR_PUBLIC_KEY',
    },
    {
      name: 'admission-closed',
      patch: '',
      literals: ['PHALANX_WORKER_ADMISSION=closed'],
      rule: 'worker-admission',
      named: 'cannot register itself',
    },
    {
      name: 'nats-cluster',
      patch: 'apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: nats\nspec:\n  replicas: 3\n',
      rule: 'nats-routes',
      named: 'no cluster block',
    },
  ]

  it.each(cases)('$name → $rule', ({ name, patch, literals, base, rule, named }) => {
    const image = base === monitoring ? releaseImage : 'phalanx:dev'
    const issues = checkManifests(renderBroken(name, patch, literals, base), contextFor(image))
    const matching = issues.filter((issue) => issue.rule === rule && issue.message.includes(named))
    expect(matching, JSON.stringify(issues, null, 1)).not.toEqual([])
  })

  it('the unpatched overlays used by these cases have no finding (so each finding is the patch)', () => {
    expect(checkManifests(renderBroken('control', ''), contextFor('phalanx:dev'))).toEqual([])
    expect(
      checkManifests(renderBroken('control-monitoring', '', [], monitoring), contextFor(releaseImage)),
    ).toEqual([])
  })
})

describe('the renderer refuses what it does not implement', () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'phalanx-k8s-unsupported-'))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it.each([
    ['replicas:\n  - name: worker\n    count: 2\n', 'replicas'],
    ['patches:\n  - target:\n      kind: Deployment\n    patch: "[]"\n', 'patches.target'],
    ['configMapGenerator:\n  - name: x\n    envs:\n      - a.env\n', 'envs'],
  ])('%s', (extra, field) => {
    const overlay = mkdtempSync(join(dir, 'k-'))
    writeFileSync(
      join(overlay, 'kustomization.yaml'),
      `resources:\n  - ${relative(overlay, join(repo, 'k8s/base'))}\n${extra}`,
    )
    expect(() => renderKustomization(overlay)).toThrow(
      expect.objectContaining({ name: 'UnsupportedKustomizeFieldError', field }),
    )
  })
})
