// What the administrators' pages share: the caller's permissions, the roles, the organisation
// tree, the labels of their codes, and forms that show the server's message next to the field
// the problem names.
import { computed, inject, provide, ref, type InjectionKey } from 'vue'
import { api, ApiError, type Paged } from '../../api'
import { lang, messages } from '../../i18n'
import { me } from '../../session'

type Permission =
  | 'org_read' | 'org_write' | 'user_read' | 'user_write' | 'user_grant' | 'user_lock' | 'token_admin' | 'audit_read'
  | 'policy_read' | 'policy_write'
export const ADMIN_ROLES = ['system_admin', 'security_admin', 'audit_admin']
export const CLEARANCES = ['public', 'internal', 'sensitive', 'confidential'] as const
type Clearance = (typeof CLEARANCES)[number]

export interface UserView extends Record<string, unknown> {
  id: string
  username: string
  display_name: string
  org_id: string
  role: string
  clearance: Clearance
  locked: boolean
  locked_until: string | null
  must_change_password: boolean
  totp_enabled: boolean
  phone: string | null
  citizen_id: string | null
  created_at: string
  updated_at: string
}

export interface Org {
  id: string
  parent_id: string | null
  name: string
  name_en: string
  kind: 'district' | 'bureau' | 'enterprise' | 'institution' | 'public'
  domain: string
  created_at: string
  updated_at: string
}

interface RoleInfo {
  role: string
  name_zh: string
  name_en: string
  permissions: Permission[]
}

/// Whether the signed-in user's role grants `p` (/api/auth/me lists the role's permissions).
export function can(p: Permission): boolean {
  return me.value?.permissions.includes(p) ?? false
}

export const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e))

/// The roles and their names, from the server.
function useRoles() {
  const roles = ref<RoleInfo[]>([])
  const error = ref('')
  api<RoleInfo[]>('GET', '/api/roles')
    .then((r) => (roles.value = r))
    .catch((e) => (error.value = errorText(e)))
  const name = (code: string) => {
    const r = roles.value.find((x) => x.role === code)
    return r ? (lang.value === 'en' ? r.name_en : r.name_zh) : code
  }
  return { roles, error, name }
}

/// Every organisation the caller may see, in tree order (each after its parent), with its depth.
function useOrgs() {
  const list = ref<Org[] | null>(null)
  const error = ref('')
  async function reload() {
    try {
      const all: Org[] = []
      for (;;) {
        const page = await api<Paged<Org>>('GET', `/api/orgs?limit=500&offset=${all.length}`)
        all.push(...page.items)
        if (!page.items.length || all.length >= page.total) break
      }
      list.value = all
      error.value = ''
    } catch (e) {
      error.value = errorText(e)
    }
  }
  const byId = computed(() => new Map((list.value ?? []).map((o) => [o.id, o])))
  // Each organisation's children; an organisation whose parent the caller cannot see is a root.
  const children = computed(() => {
    const kids = new Map<string | null, Org[]>()
    for (const o of list.value ?? []) {
      const p = o.parent_id && byId.value.has(o.parent_id) ? o.parent_id : null
      kids.set(p, [...(kids.get(p) ?? []), o])
    }
    return kids
  })
  const tree = computed(() => {
    const out: { org: Org; depth: number }[] = []
    const walk = (parent: string | null, depth: number) => {
      for (const org of children.value.get(parent) ?? []) {
        out.push({ org, depth })
        walk(org.id, depth + 1)
      }
    }
    walk(null, 0)
    return out
  })
  const name = (id: string) => {
    const o = byId.value.get(id)
    return o ? orgName(o) : id
  }
  reload()
  return { list, error, children, tree, name, reload }
}

export const orgName = (o: Org) => (lang.value === 'en' && o.name_en ? o.name_en : o.name)

/// The organisations and roles a page and its parts share: the page provides them, loaded once
/// per visit; its components inject them.
type Directory = { orgs: ReturnType<typeof useOrgs>; roles: ReturnType<typeof useRoles> }
const directory: InjectionKey<Directory> = Symbol('directory')
export function provideDirectory(): Directory {
  const d = { orgs: useOrgs(), roles: useRoles() }
  provide(directory, d)
  return d
}
export function useDirectory(): Directory {
  const d = inject(directory)
  if (!d) throw new Error('provideDirectory() was not called by the page')
  return d
}

/// Words the administrators' pages share.
export const w = messages({
  org: ['所属机构', 'Organisation'],
  citizenId: ['身份证号', 'Citizen ID'],
  cancel: ['取消', 'Cancel'],
  save: ['保存', 'Save'],
  done: ['我已保存，关闭', 'Saved it, close'],
  close: ['关闭', 'Close'],
  created: ['创建时间', 'Created'],
  updated: ['更新时间', 'Updated'],
  name: ['名称', 'Name'],
})

/// A lookup of codes' [Chinese, English] labels; an unknown code is shown as it is.
function labels(dict: Record<string, [string, string]>): (code: string) => string {
  return (code) => dict[code]?.[lang.value === 'en' ? 1 : 0] ?? code
}

export const clearanceLabel = labels({
  public: ['公开', 'Public'],
  internal: ['内部', 'Internal'],
  sensitive: ['敏感', 'Sensitive'],
  confidential: ['机密', 'Confidential'],
})

export const ORG_KINDS = ['bureau', 'enterprise', 'institution'] as const
export const kindLabel = labels({
  district: ['区政府', 'District'],
  bureau: ['委办局', 'Bureau'],
  enterprise: ['企业', 'Enterprise'],
  institution: ['医疗机构/事业单位', 'Institution'],
  public: ['居民', 'Residents'],
})

const domains: Record<string, [string, string]> = {
  transport: ['交通', 'Transport'],
  health: ['卫生健康', 'Health'],
  agriculture: ['农业', 'Agriculture'],
  commerce: ['商务', 'Commerce'],
  environment: ['环保', 'Environment'],
  emergency: ['应急', 'Emergency'],
  industry: ['工业和信息化', 'Industry and IT'],
  talent: ['人才', 'Talent'],
  culture: ['文化', 'Culture'],
  government: ['政务', 'Government'],
}
/// The domains the server knows (crates/kernel/src/orgs.rs); '' is none.
export const DOMAINS = Object.keys(domains)
export const domainLabel = labels({ '': ['—', '—'], ...domains })

export const scopeLabel = labels({
  read: ['只读', 'Read only'],
  read_write: ['读写', 'Read and write'],
})

/// A form's submission: the server's message shown next to the field the problem names when the
/// form has that field, otherwise as the form's error.
export function useForm(fields: string[]) {
  const errors = ref<Record<string, string>>({})
  const error = ref('')
  const busy = ref(false)
  /// Runs `send` (the request and what follows its success); whether it succeeded.
  async function submit(send: () => Promise<void>): Promise<boolean> {
    busy.value = true
    errors.value = {}
    error.value = ''
    try {
      await send()
      return true
    } catch (e) {
      const f = e instanceof ApiError ? e.problem.field : undefined
      if (f && fields.includes(f)) errors.value = { [f]: errorText(e) }
      else error.value = errorText(e)
      return false
    } finally {
      busy.value = false
    }
  }
  return { errors, error, busy, submit }
}
