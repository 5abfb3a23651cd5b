// Playback of a timeline in a multiple of real time: the clock advances with the animation
// frames, jumps over gaps in the data, and stops at the end.
import { computed, onBeforeUnmount, ref, watch, type Ref } from 'vue'
import type { Timeline } from './track'

/// Multiples of real time; at 60× an hour of driving plays in a minute.
export const RATES = [1, 2, 5, 10, 30, 60, 120, 300, 600]

/// A frame later than this (a hidden tab) advances the clock by this much only.
const MAX_FRAME_MS = 250

export function usePlayback(timeline: Ref<Timeline | null>) {
  const cursor = ref(0)
  const playing = ref(false)
  const rate = ref(60)
  let frame = 0
  let last = 0

  function tick(now: number) {
    const tl = timeline.value
    if (!tl) return pause()
    const next = tl.skipGap(cursor.value + Math.min(now - last, MAX_FRAME_MS) * rate.value)
    last = now
    if (next >= tl.end) {
      cursor.value = tl.end
      return pause()
    }
    cursor.value = next
    frame = requestAnimationFrame(tick)
  }

  function play() {
    const tl = timeline.value
    if (!tl || tl.end <= tl.start) return
    if (cursor.value >= tl.end) cursor.value = tl.start
    playing.value = true
    last = performance.now()
    frame = requestAnimationFrame(tick)
  }

  function pause() {
    playing.value = false
    cancelAnimationFrame(frame)
  }

  function seek(ms: number) {
    const tl = timeline.value
    if (tl) cursor.value = Math.min(tl.end, Math.max(tl.start, ms))
  }

  watch(timeline, (tl) => {
    pause()
    cursor.value = tl?.start ?? 0
  })
  onBeforeUnmount(pause)

  const moment = computed(() => timeline.value?.at(cursor.value) ?? null)
  return { cursor, playing, rate, moment, play, pause, seek }
}
