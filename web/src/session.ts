// Who is signed in (from /api/auth/me, which the session cookie answers).
import { ref } from 'vue'
import { api, ApiError, type Me } from './api'

export const me = ref<Me | null>(null)
export const checked = ref(false)

export async function loadMe(): Promise<Me | null> {
  try {
    me.value = await api<Me>('GET', '/api/auth/me')
  } catch (e) {
    if (!(e instanceof ApiError)) throw e
    me.value = null
  }
  checked.value = true
  return me.value
}

export async function logout() {
  try {
    await api('POST', '/api/auth/logout')
  } finally {
    me.value = null
  }
}
