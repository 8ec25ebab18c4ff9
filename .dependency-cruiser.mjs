/**
 * The import rules of docs/ARCHITECTURE.md ("Packages and who may import whom"), checked by
 * `npm run lint` (and so by `npm test`); scripts/test/dependency-rules.test.ts shows each rule
 * failing on a fixture tree.
 *
 * `@phalanx/<name>` resolves to `packages/<name>/src/index.ts` (the `paths` of
 * tsconfig.test.json, like the vitest alias), so the rules match repository paths and the
 * check needs no build.
 */

/**
 * Which of our packages each package's code (src, test, scripts) may import, besides itself and
 * `@phalanx/errors`, the bottom package everyone may import: the "may import" column of
 * docs/ARCHITECTURE.md — change both together. Every directory under packages/ needs an entry
 * (the test checks it, and that each package.json and tsconfig.json asks for no more). A
 * package not in the tree yet costs nothing: its rule matches no file.
 */
export const mayImport = {
  errors: [],
  aggregation: [],
  attacks: ['aggregation'],
  model: ['aggregation'],
  net: [],
  control: [],
  // not lab: lab runs nodes, never the other way round.
  node: ['aggregation', 'attacks', 'model', 'net', 'control'],
  // local.ts runs node processes (control for the run's operator key, net for peer keys),
  // simulate.ts and the trainer train in one process (model, aggregation, attacks).
  lab: ['aggregation', 'attacks', 'model', 'net', 'control', 'node'],
  cli: ['aggregation', 'attacks', 'model', 'net', 'control', 'node', 'lab'],
}

/** Our packages a package may import: itself, errors and its `mayImport` list. */
export const allowedFor = (name) => [...new Set([name, 'errors', ...mayImport[name]])]

const layering = Object.keys(mayImport).map((name) => ({
  name: `layer-${name}`,
  severity: 'error',
  comment: `packages/${name} may import only ${allowedFor(name).join(', ')} of ours (docs/ARCHITECTURE.md).`,
  from: { path: `^packages/${name}/` },
  to: { path: '^packages/[^/]+/', pathNot: `^packages/(?:${allowedFor(name).join('|')})/` },
}))

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      // Type-only imports count: a cycle of types is still two files that cannot be read,
      // moved or split one without the other.
      comment: 'An import cycle between files, within a package or across packages.',
      from: {},
      to: { circular: true },
    },
    ...layering,
    {
      name: 'no-relative-cross-package',
      severity: 'error',
      comment:
        "A package reaches into another package's src/ or dist/ by relative path: import " +
        '`@phalanx/<name>`, its public surface, instead (which also keeps the build order).',
      from: { path: '^packages/([^/]+)/' },
      to: { path: '^packages/', pathNot: '^packages/$1/', dependencyTypesNot: ['aliased-tsconfig-paths'] },
    },
    {
      name: 'no-src-to-test',
      severity: 'error',
      comment: 'Production source imports test code.',
      from: { path: '^packages/[^/]+/src/' },
      to: { path: ['^packages/[^/]+/test/', '^test/', '^bench/', '[.]test[.][cm]?[jt]s$'] },
    },
    {
      name: 'no-src-to-dev-dependency',
      severity: 'error',
      comment:
        'Production source imports an npm package its own package.json does not list in ' +
        "`dependencies` (a devDependency, or one only the repository root's package.json has).",
      from: { path: '^packages/[^/]+/src/' },
      to: { dependencyTypes: ['npm-dev', 'npm-no-pkg', 'npm-unknown'] },
    },
  ],
  options: {
    // Built output is not cruised (the roots in package.json name source directories), but an
    // import of it stays visible, unlike with `exclude`, so no-relative-cross-package sees it.
    doNotFollow: { path: ['(^|/)node_modules/', '(^|/)dist/'] },
    // The fixture trees of the rules' own test break the rules on purpose.
    exclude: { path: '^scripts/test/fixtures/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.test.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'types', 'node', 'default'],
      extensions: ['.ts', '.js', '.mjs', '.d.ts'],
    },
    skipAnalysisNotInRules: true,
  },
}
