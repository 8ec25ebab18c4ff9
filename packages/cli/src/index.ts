/**
 * @packageDocumentation
 * `@phalanx/cli`: the `phalanx` command (`local`, `server`, `worker`, `simulate`). Its pieces
 * are exported for tests.
 *
 * @example
 * ```sh
 * phalanx local --rounds 100 --rule krum --worker-attack alie --out out/
 * ```
 */
export { addConfigOptions, configFromOptions } from './options.js'
export { progressLine, summaryTable } from './view.js'
