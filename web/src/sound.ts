// The desk's alert tone, synthesised (no audio file to ship): a short two-note chime, higher
// and repeated for the graver severities. Browsers allow sound once the user has interacted with
// the page (signing in counts); before that the chime is silently skipped.
let ctx: AudioContext | null = null

const pitch: Record<string, [number, number, number]> = {
  // [first Hz, second Hz, repeats]
  critical: [988, 1319, 3],
  major: [880, 1175, 2],
  moderate: [784, 988, 1],
  minor: [659, 784, 1],
  notice: [523, 659, 1],
}

export function chime(severity: string) {
  try {
    ctx ??= new AudioContext()
    if (ctx.state === 'suspended') void ctx.resume()
    const [a, b, n] = pitch[severity] ?? pitch.notice
    let t = ctx.currentTime + 0.02
    for (let i = 0; i < n; i++) {
      for (const f of [a, b]) {
        const osc = ctx.createOscillator()
        const gain = ctx.createGain()
        osc.frequency.value = f
        gain.gain.setValueAtTime(0.0001, t)
        gain.gain.exponentialRampToValueAtTime(0.2, t + 0.02)
        gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.18)
        osc.connect(gain).connect(ctx.destination)
        osc.start(t)
        osc.stop(t + 0.2)
        t += 0.2
      }
      t += 0.15
    }
  } catch {
    // No audio device or not allowed yet: the badge still shows the new alarm.
  }
}
