// Images for the map's symbol layers, drawn on a canvas: the style has no glyphs (no glyph
// server to host offline), so every text on the map (town names, cluster counts) and every icon
// (the heading arrow) is a small image made here.

/// One scratch canvas for every image (cluster counts come and go as vehicles move).
let scratch: CanvasRenderingContext2D | null = null

/// `w`×`h` CSS pixels at the screen's pixel ratio, drawn by `draw`, as map image data.
export function paint(w: number, h: number, draw: (c: CanvasRenderingContext2D) => void) {
  const ratio = Math.max(1, Math.round(window.devicePixelRatio || 1))
  scratch ??= document.createElement('canvas').getContext('2d', { willReadFrequently: true })
  if (!scratch) throw new Error('no 2D canvas')
  const c = scratch
  // Resizing clears the canvas and resets its state.
  c.canvas.width = w * ratio
  c.canvas.height = h * ratio
  c.scale(ratio, ratio)
  draw(c)
  return { image: c.getImageData(0, 0, c.canvas.width, c.canvas.height), ratio }
}

/// A label: dark text on a translucent white box, sized to the text.
export function label(text: string) {
  const font = '12px system-ui, "Noto Sans CJK SC", sans-serif'
  scratch ??= document.createElement('canvas').getContext('2d', { willReadFrequently: true })
  if (scratch) scratch.font = font
  const width = Math.ceil((scratch?.measureText(text).width ?? text.length * 12) + 8)
  return paint(width, 18, (c) => {
    c.fillStyle = 'rgba(255, 255, 255, 0.8)'
    c.fillRect(0, 0, width, 18)
    c.font = font
    c.fillStyle = '#374151'
    c.textBaseline = 'middle'
    c.fillText(text, 4, 9.5)
  })
}
