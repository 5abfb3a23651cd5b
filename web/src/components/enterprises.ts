// The enterprises a regulator oversees (their own organisation is all an operator sees), for the
// registry pages' enterprise filter and column.
import { ref } from 'vue'
import { api, type Paged } from '../api'
import { lang } from '../i18n'

export interface Org {
  id: string
  name: string
  name_en: string | null
}

export function useEnterprises() {
  const orgs = ref<Org[]>([])
  const error = ref('')
  async function load() {
    try {
      orgs.value = (await api<Paged<Org>>('GET', '/api/orgs?kind=enterprise&limit=500')).items
    } catch (e) {
      error.value = e instanceof Error ? e.message : String(e)
    }
  }
  /// An enterprise's name in the console's language (its id if it is not known).
  function name(id: string): string {
    const o = orgs.value.find((x) => x.id === id)
    return o ? (lang.value === 'en' && o.name_en) || o.name : id
  }
  return { orgs, error, load, name }
}
