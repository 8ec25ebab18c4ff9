/**
 * Renders a kustomization and runs the offline manifest checks on it, for an overlay of your
 * own: `npx tsx scripts/k8s-check.ts ../phalanx-prod [image]` (needs `npx tsc -b` first, as
 * the checks read the config schema from the built packages). Prints the rendered YAML with
 * `--render`. Exit code 1 when a check fails.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stringify } from 'yaml'
import { checkDockerfile, checkManifests, parseDockerfile } from '../test/support/k8s-checks.js'
import { renderKustomization } from '../test/support/k8s-render.js'

const repo = fileURLToPath(new URL('..', import.meta.url))
const args = process.argv.slice(2)
const render = args.includes('--render')
const [dir, imageArgument] = args.filter((arg) => arg !== '--render')
if (dir === undefined) {
  console.error('usage: npx tsx scripts/k8s-check.ts <kustomization dir> [image] [--render]')
  process.exit(2)
}
const cli = JSON.parse(readFileSync(join(repo, 'packages/cli/package.json'), 'utf8')) as {
  version: string
  bin: Record<string, string>
}
const workspaces = readdirSync(join(repo, 'packages')).map((name) => `packages/${name}`)
const dockerfile = parseDockerfile(readFileSync(join(repo, 'deploy/Dockerfile'), 'utf8'))
const objects = renderKustomization(dir)
if (render) {
  process.stdout.write(objects.map((object) => stringify(object)).join('---\n'))
  process.exit(0)
}
const image = imageArgument ?? `ghcr.io/phalanx-ml/phalanx:${cli.version}`
const issues = [
  ...checkDockerfile(dockerfile, cli, workspaces),
  ...checkManifests(objects, { dockerfile, image, cliCommands: ['server', 'worker'] }),
]
for (const issue of issues) console.log(`${issue.rule}\t${issue.object}\t${issue.message}`)
console.log(`${dir}: ${objects.length} objects, ${issues.length} findings`)
process.exit(issues.length === 0 ? 0 : 1)
