/**
 * @packageDocumentation
 * `@phalanx/cli`: the `phalanx` command (`local`, `server`, `worker`, `simulate`, `experiment`
 * and the control commands). Its pieces are exported for tests.
 *
 * @example
 * ```sh
 * phalanx local --rounds 100 --rule krum --worker-attack alie --out out/
 * ```
 */
export { cliErrorCodes, FieldNotHonouredError } from './errors.js'
export { exitCodeOf, exitCodes, exitCodesMarkdown, signalExitCodes } from './exit-codes.js'
export { commandDefaults, honours, runCommandNames, scopeOf, scopes } from './fields.js'
export { addConfigOptions, checkHonoured, configFromCommand, fieldOption, placeholder } from './options.js'
export { createProgram } from './program.js'
export { cliVersion } from './version.js'
export { ProgressView, progressLine, startupLine, summaryTable } from './view.js'
