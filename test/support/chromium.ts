/**
 * A real headless browser for the tests: Debian's `chromium`, driven over the DevTools protocol
 * on a pipe (`--remote-debugging-pipe`: requests on fd 3, answers and events on fd 4, each a JSON
 * message ended by a NUL byte), so no npm browser driver and no port are needed. `openPage` loads
 * a URL, waits for its load event, evaluates an expression in it and returns its value with every
 * console error, uncaught exception and browser log error the page caused.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable, Writable } from 'node:stream'

/** Where Debian's package puts the browser; undefined when it is not installed. */
export const chromiumPath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) =>
  existsSync(path),
)

interface Message {
  id?: number
  method?: string
  params?: Record<string, unknown>
  result?: Record<string, unknown>
  error?: { message: string }
  sessionId?: string
}

export interface PageResult<T> {
  value: T
  /** Console errors, uncaught exceptions and browser log entries of level error. */
  errors: string[]
}

export async function openPage<T>(
  url: string,
  expression: string,
  timeoutMs = 30_000,
): Promise<PageResult<T>> {
  if (chromiumPath === undefined) throw new Error('chromium is not installed')
  const profile = mkdtempSync(join(tmpdir(), 'phalanx-chromium-'))
  const browser = spawn(
    chromiumPath,
    [
      '--headless',
      // Root in a container has no user namespace for the sandbox.
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--remote-debugging-pipe',
      `--user-data-dir=${profile}`,
      'about:blank',
    ],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
  )
  let stderr = ''
  browser.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000)
  })
  const exited = new Promise<void>((resolve) => browser.once('exit', () => resolve()))
  const toBrowser = browser.stdio[3] as Writable
  const fromBrowser = browser.stdio[4] as Readable
  const pending = new Map<number, { resolve: (m: Message) => void; reject: (e: Error) => void }>()
  const listeners: ((m: Message) => void)[] = []
  const errors: string[] = []
  let buffer = ''
  fromBrowser.on('data', (chunk: Buffer) => {
    buffer += chunk.toString()
    let end = buffer.indexOf('\0')
    while (end >= 0) {
      const message = JSON.parse(buffer.slice(0, end)) as Message
      buffer = buffer.slice(end + 1)
      end = buffer.indexOf('\0')
      if (message.id !== undefined) {
        const waiter = pending.get(message.id)
        pending.delete(message.id)
        if (message.error) waiter?.reject(new Error(`${message.error.message}`))
        else waiter?.resolve(message)
      } else {
        for (const listener of listeners) listener(message)
      }
    }
  })
  let nextId = 1
  const send = (method: string, params: Record<string, unknown> = {}, sessionId?: string) =>
    new Promise<Message>((resolve, reject) => {
      const id = nextId++
      pending.set(id, { resolve, reject })
      toBrowser.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`)
    })
  listeners.push((message) => {
    const params = message.params ?? {}
    if (message.method === 'Runtime.consoleAPICalled' && params.type === 'error') {
      errors.push(`console.error: ${JSON.stringify(params.args)}`)
    } else if (message.method === 'Runtime.exceptionThrown') {
      errors.push(`exception: ${JSON.stringify(params.exceptionDetails)}`)
    } else if (message.method === 'Log.entryAdded') {
      const entry = params.entry as { level: string; text: string; url?: string }
      if (entry.level === 'error') errors.push(`log: ${entry.text} ${entry.url ?? ''}`)
    }
  })
  const timer = setTimeout(() => {
    for (const waiter of pending.values()) waiter.reject(new Error(`chromium did not answer: ${stderr}`))
    browser.kill('SIGKILL')
  }, timeoutMs)
  try {
    const { result: target } = await send('Target.createTarget', { url: 'about:blank' })
    const { result: attached } = await send('Target.attachToTarget', {
      targetId: target!.targetId,
      flatten: true,
    })
    const sessionId = attached!.sessionId as string
    await send('Runtime.enable', {}, sessionId)
    await send('Log.enable', {}, sessionId)
    await send('Page.enable', {}, sessionId)
    const loaded = new Promise<void>((resolve) =>
      listeners.push((message) => {
        if (message.method === 'Page.loadEventFired' && message.sessionId === sessionId) resolve()
      }),
    )
    const { result: navigated } = await send('Page.navigate', { url }, sessionId)
    if (navigated?.errorText)
      throw new Error(`chromium could not open ${url}: ${String(navigated.errorText)}`)
    await loaded
    const { result } = await send(
      'Runtime.evaluate',
      { expression, returnByValue: true, awaitPromise: true },
      sessionId,
    )
    const evaluated = result as { result: { value: T }; exceptionDetails?: unknown }
    if (evaluated.exceptionDetails) errors.push(`evaluate: ${JSON.stringify(evaluated.exceptionDetails)}`)
    return { value: evaluated.result.value, errors }
  } finally {
    clearTimeout(timer)
    await send('Browser.close').catch(() => undefined)
    const killer = setTimeout(() => browser.kill('SIGKILL'), 5_000)
    await exited
    clearTimeout(killer)
    rmSync(profile, { recursive: true, force: true })
  }
}
