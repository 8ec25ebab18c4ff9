#!/usr/bin/env node
/** `phalanx`: the command a person, a test and a container run (the commands: `program.ts`). */
import { fileURLToPath } from 'node:url'
import { CommanderError } from 'commander'
import { exitCodes } from './exit-codes.js'
import { createProgram } from './program.js'

try {
  await createProgram({ cliPath: fileURLToPath(import.meta.url) }).parseAsync(process.argv)
} catch (error) {
  if (!(error instanceof CommanderError)) throw error
  // commander has printed its message (or the help, or the version: exit code 0).
  process.exitCode = error.exitCode === 0 ? exitCodes.ok.code : exitCodes.usage.code
}
