/**
 * The keys a JSON text repeats within one object. `JSON.parse` keeps the last of two equal keys
 * and says nothing, so a log line `{"peer":"a",…,"peer":"b"}` reads as one value: this scans the
 * text itself. It assumes valid JSON (a log line pino wrote) and returns `path.key` of each repeat.
 */
export function duplicateKeys(text: string): string[] {
  let at = 0
  const found: string[] = []
  const space = () => {
    while (at < text.length && /\s/.test(text[at]!)) at++
  }
  const string = (): string => {
    const start = at
    at++ // opening quote
    while (text[at] !== '"') at += text[at] === '\\' ? 2 : 1
    at++
    return JSON.parse(text.slice(start, at)) as string
  }
  const value = (path: string): void => {
    space()
    const c = text[at]
    if (c === '{') {
      at++
      const keys = new Set<string>()
      space()
      if (text[at] === '}') {
        at++
        return
      }
      for (;;) {
        space()
        const key = string()
        if (keys.has(key)) found.push(`${path}${key}`)
        keys.add(key)
        space()
        at++ // colon
        value(`${path}${key}.`)
        space()
        if (text[at++] === '}') return
      }
    } else if (c === '[') {
      at++
      space()
      if (text[at] === ']') {
        at++
        return
      }
      for (let i = 0; ; i++) {
        value(`${path}${i}.`)
        space()
        if (text[at++] === ']') return
      }
    } else if (c === '"') {
      string()
    } else {
      while (at < text.length && !/[,}\]\s]/.test(text[at]!)) at++
    }
  }
  value('')
  return found
}
