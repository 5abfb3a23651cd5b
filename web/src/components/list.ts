// What the shared list, its export and the pages that use them agree on: columns, filters as
// query parameters, and reading a whole filtered list a page at a time.
import { api, type Paged } from '../api'

/// One column of a list: its title (in the current language), how it reads a row as text, and
/// where that text leads, if anywhere.
export interface Column<R> {
  key: string
  title: string
  value: (row: R) => string
  link?: (row: R) => string | undefined
  /** Shows the cell as a coloured tag (expired, due soon, …); an export keeps the text only. */
  tone?: (row: R) => Tone | undefined
  /** The page draws the cell itself (DataList's `cell` slot, a progress display, say); an
   *  export keeps `value`. */
  custom?: boolean
}

/// The tags' colours (style.css `.tag`): bad (expired, overdue), warn (due soon), ok, info, muted.
export type Tone = 'bad' | 'warn' | 'ok' | 'info' | 'muted'

/// A list's filters as the API's query parameters; an empty or undefined value is left out.
export type Query = Record<string, string | undefined>

export function searchParams(query: Query): URLSearchParams {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) if (v) q.set(k, v)
  return q
}

/// The API's largest page.
const CHUNK = 500

/// Every item of a list with these filters, up to `cap`, pages of the API's largest size;
/// `progress` hears how many have arrived of how many there are. `total` is what the API counts,
/// which may exceed the items returned when it is over the cap.
export async function fetchAll<T>(
  path: string,
  query: Query,
  cap: number,
  progress?: (done: number, total: number) => void,
): Promise<{ items: T[]; total: number }> {
  const items: T[] = []
  let total = 0
  do {
    const q = searchParams(query)
    q.set('limit', String(Math.min(CHUNK, cap - items.length)))
    q.set('offset', String(items.length))
    const page = await api<Paged<T>>('GET', `${path}?${q}`)
    total = page.total
    items.push(...page.items)
    progress?.(items.length, Math.min(total, cap))
    if (!page.items.length) break
  } while (items.length < Math.min(total, cap))
  return { items, total }
}
