// What the overview's charts share: their colours (the severities' are style.css's) and a grid
// whose axis labels stay inside the chart's box.
import { readonly, ref } from 'vue'
import type { EChartsOption } from 'echarts'

/// A colour of style.css's root, for the charts' canvas (which cannot read CSS variables).
export function cssColour(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim()
}

export const ONLINE = '#16a34a'
export const OFFLINE = '#9ca3af'
export const ACCENT = '#1d4ed8'
export const WARN = '#d97706'

export const GRID: EChartsOption['grid'] = { left: 8, right: 24, top: 32, bottom: 8, outerBoundsMode: 'same' }

export const percent = (x: number | null, digits = 1) => (x === null ? '–' : `${(x * 100).toFixed(digits)}%`)

const wide = window.matchMedia('(min-width: 1800px)')
const size = ref(wide.matches ? 15 : 12)
wide.addEventListener('change', (e) => (size.value = e.matches ? 15 : 12))
/// The charts' text size in px: larger on a wall-sized window. Axis labels do not follow the
/// option's `textStyle`, so the charts give it to them too.
export const fontSize = readonly(size)
