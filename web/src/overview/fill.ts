// The height from an element's top down to the bottom of the window, less a margin: what a page
// may take to fill the screen without scrolling. Measured again when the window's size or the
// language (and with it the header above) changes.
import { nextTick, onMounted, onUnmounted, ref, watch, type Ref } from 'vue'
import { lang } from '../i18n'

export function useFillHeight(el: Ref<HTMLElement | undefined>, margin: number) {
  const height = ref(0)
  function measure() {
    if (el.value) height.value = window.innerHeight - (el.value.getBoundingClientRect().top + window.scrollY) - margin
  }
  onMounted(() => {
    measure()
    window.addEventListener('resize', measure)
  })
  onUnmounted(() => window.removeEventListener('resize', measure))
  watch(lang, () => nextTick(measure))
  return height
}
