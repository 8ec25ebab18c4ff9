#!/usr/bin/env node
/** `phalanx`: the command a person, a test and a container run (the commands: `program.ts`). */
import { fileURLToPath } from 'node:url'
import { createProgram } from './program.js'

await createProgram({ cliPath: fileURLToPath(import.meta.url) }).parseAsync(process.argv)
