// End-to-end: the three administrators' pages (三员分立) in headless Chromium against a fresh
// `serve --demo` (web/e2e/run.sh). The system administrator adds an enterprise under the
// transport bureau and an operator account in it, each form showing the server's message next to
// the field at fault, the initial password shown once; the operator must change it at first
// sign-in; the security administrator locks the account (its sign-in then says so) and unlocks
// it; the system administrator creates an API token, sees its secret once, uses it, revokes it,
// and it stops working; the security administrator publishes a lower lock-out threshold (a value
// out of range refused by field, a stale version refused and reloaded), which is then in force.
// Exits non-zero on the first failure.
// Usage: node e2e/admin.test.mjs BASE_URL DATA_DIR
import { base, password, totp, launch, newPage, step, signIn, enrolTotp } from './lib.mjs'

const ORG = '武清区城际物流有限公司'
const USER = 'wl.qian'
const NEW_PASSWORD = 'Wuqing-Logistics-2026'

/// The text of what describes a form control (its hint and the server's message about it).
async function description(control) {
  return control.evaluate((el) =>
    (el.getAttribute('aria-describedby') ?? '')
      .split(' ')
      .map((id) => document.getElementById(id)?.textContent ?? '')
      .join(' '),
  )
}

/// Waits until the server's message about a form control is shown next to it.
async function fieldError(dialog, label, message) {
  const control = dialog.getByLabel(label, { exact: true })
  await dialog.locator('[aria-invalid="true"]').first().waitFor()
  if ((await control.getAttribute('aria-invalid')) !== 'true') throw new Error(`${label} is not marked invalid`)
  const d = await description(control)
  if (!d.includes(message)) throw new Error(`${label} is described as "${d}", not "${message}"`)
}

/// A bearer token's answer for GET /api/auth/me.
async function meWith(token) {
  return fetch(`${base}/api/auth/me`, { headers: { authorization: `Bearer ${token}` } })
}

/// An administrator's first sign-in: enrols the second factor; returns its secret.
async function firstAdminSignIn(page, user) {
  await page.goto(`${base}/login`)
  await signIn(page, user)
  const secret = await enrolTotp(page)
  await page.waitForURL(`${base}/users`)
  return secret
}

/// POST /api/auth/login's answer.
async function login(body) {
  const r = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: r.status, json: await r.json() }
}

const browser = await launch()
try {
  const sys = await newPage(browser)
  step('the system administrator enrols a second factor and lands on the accounts')
  await firstAdminSignIn(sys, 'sysadmin')
  await sys.getByRole('link', { name: 'dr.wu' }).waitFor()

  step('adds an enterprise under the transport bureau; an empty name is refused next to the field')
  await sys.getByRole('banner').getByRole('link', { name: '组织机构' }).click()
  await sys.getByRole('button', { name: '新建下级 · 武清区交通运输局' }).click()
  const orgForm = sys.getByRole('dialog', { name: '新建下级机构' })
  await orgForm.getByRole('button', { name: '创建' }).click()
  await fieldError(orgForm, '名称（中文）', 'name must have 1 to 100 characters')
  await orgForm.getByLabel('名称（中文）', { exact: true }).fill(ORG)
  await orgForm.getByLabel('英文名称', { exact: true }).fill('Wuqing Intercity Logistics Co., Ltd.')
  if ((await orgForm.getByLabel('类型', { exact: true }).inputValue()) !== 'enterprise') throw new Error('a bureau\'s child is not an enterprise by default')
  await orgForm.getByRole('button', { name: '创建' }).click()
  await orgForm.waitFor({ state: 'detached' })
  await sys.locator(`xpath=//li[div//strong[.="武清区交通运输局"]]/ul/li/div//strong[.="${ORG}"]`).waitFor()

  step('adds an operator account there; a bad phone number is refused next to the field')
  await sys.getByRole('banner').getByRole('link', { name: '用户' }).click()
  await sys.getByRole('button', { name: '新建账户' }).click()
  const userForm = sys.getByRole('dialog', { name: '新建账户' })
  await userForm.getByLabel('用户名', { exact: true }).fill(USER)
  await userForm.getByLabel('姓名', { exact: true }).fill('城际物流 钱明')
  const orgSelect = userForm.getByLabel('所属机构', { exact: true })
  await orgSelect.selectOption(await orgSelect.locator('option', { hasText: ORG }).getAttribute('value'))
  await userForm.getByLabel('角色', { exact: true }).selectOption({ label: '企业/机构操作员' })
  await userForm.getByLabel('手机号', { exact: true }).fill('12345')
  await userForm.getByRole('button', { name: '创建' }).click()
  await fieldError(userForm, '手机号', 'a mobile number has 11 digits and starts with 1')
  await userForm.getByLabel('手机号', { exact: true }).fill('13900001234')
  await userForm.getByRole('button', { name: '创建' }).click()

  step('the initial password is shown once')
  const initial = await userForm.getByTestId('once-secret').inputValue()
  if (initial.length < 10) throw new Error(`initial password "${initial}"`)
  await userForm.getByText('仅显示这一次').waitFor()
  await userForm.getByRole('button', { name: '我已保存，关闭' }).click()
  await userForm.waitFor({ state: 'detached' })
  const panel = sys.getByRole('region', { name: USER })
  await panel.getByText('待修改初始密码').waitFor()
  await panel.getByText('139****1234').waitFor()
  if ((await sys.content()).includes(initial)) throw new Error('the initial password is still on the page')
  await sys.getByRole('link', { name: USER }).waitFor()
  for (const name of ['授权', '锁定']) {
    if (await panel.getByRole('button', { name }).count()) throw new Error(`the system administrator is offered "${name}"`)
  }

  step('the operator signs in and must change the initial password first')
  const op = await newPage(browser)
  await op.goto(`${base}/login`)
  await signIn(op, USER, initial)
  await op.getByText('首次登录须修改初始密码').waitFor()
  await op.getByLabel('新密码').fill(NEW_PASSWORD)
  await op.getByRole('button', { name: '修改密码' }).click()
  await op.waitForURL(`${base}/`)

  step('the security administrator enrols a second factor and locks the operator')
  const sec = await newPage(browser)
  const secTotp = await firstAdminSignIn(sec, 'secadmin')
  await sec.getByLabel('用户名或姓名').fill(USER)
  await sec.getByRole('link', { name: USER }).click()
  const secPanel = sec.getByRole('region', { name: USER })
  await secPanel.getByText('正常').waitFor()
  for (const name of ['编辑资料', '重置密码']) {
    if (await secPanel.getByRole('button', { name }).count()) throw new Error(`the security administrator is offered "${name}"`)
  }
  await secPanel.getByRole('button', { name: '锁定' }).click()
  const lockDialog = sec.getByRole('dialog', { name: `锁定 · ${USER}` })
  await lockDialog.getByRole('button', { name: '锁定' }).click()
  await lockDialog.waitFor({ state: 'detached' })
  await secPanel.getByText('已被管理员锁定').waitFor()
  await sec.getByRole('row').filter({ hasText: USER }).getByText('已锁定').waitFor()

  step('the locked operator\'s session is over and signing in says the account is locked')
  await op.reload()
  await op.waitForURL(/\/login/)
  await signIn(op, USER, NEW_PASSWORD)
  await op.getByRole('alert').filter({ hasText: '账户已被管理员锁定' }).waitFor()

  step('the security administrator unlocks the operator, who signs in again')
  await secPanel.getByRole('button', { name: '解锁' }).click()
  await secPanel.getByText('正常').waitFor()
  await op.getByRole('button', { name: '登录' }).click()
  await op.waitForURL(`${base}/`)

  step('the system administrator creates an API token; its secret is shown once and works')
  await sys.getByRole('banner').getByRole('link', { name: '接口令牌' }).click()
  await sys.getByRole('heading', { name: '接口令牌 · 我的令牌' }).waitFor()
  await sys.getByRole('button', { name: '新建令牌' }).click()
  const tokenForm = sys.getByRole('dialog', { name: '新建接口令牌' })
  await tokenForm.getByLabel('有效天数', { exact: true }).fill('400')
  await tokenForm.getByLabel('名称（用途）', { exact: true }).fill('e2e 巡检脚本')
  await tokenForm.getByRole('button', { name: '创建' }).click()
  await fieldError(tokenForm, '有效天数', 'must be between 1 and 365')
  await tokenForm.getByLabel('有效天数', { exact: true }).fill('30')
  await tokenForm.getByRole('button', { name: '创建' }).click()
  const secret = await tokenForm.getByTestId('once-secret').inputValue()
  await tokenForm.getByText('仅显示这一次').waitFor()
  const ok = await meWith(secret)
  if (ok.status !== 200) throw new Error(`the new token answered ${ok.status}`)
  if ((await ok.json()).user.username !== 'sysadmin') throw new Error('the token is not the system administrator\'s')
  await tokenForm.getByRole('button', { name: '我已保存，关闭' }).click()
  await tokenForm.waitFor({ state: 'detached' })
  if ((await sys.content()).includes(secret)) throw new Error('the token\'s secret is still on the page')

  step('revoking it (after a confirmation) ends it')
  const row = sys.getByRole('row').filter({ hasText: 'e2e 巡检脚本' })
  await row.getByText('有效').waitFor()
  await row.getByRole('button', { name: '吊销 e2e 巡检脚本' }).click()
  const revokeDialog = sys.getByRole('dialog', { name: '吊销 · e2e 巡检脚本' })
  await revokeDialog.getByRole('button', { name: '吊销' }).click()
  await revokeDialog.waitFor({ state: 'detached' })
  await row.getByText('已吊销').waitFor()
  const gone = await meWith(secret)
  if (gone.status !== 401) throw new Error(`the revoked token answered ${gone.status}`)

  step('the security administrator publishes a lock-out threshold of 3; an out-of-range value is refused next to the field')
  await sec.getByRole('banner').getByRole('link', { name: '安全设置' }).click()
  await sec.getByText('当前版本 1').waitFor()
  const threshold = sec.getByLabel('连续失败次数', { exact: true })
  await threshold.fill('20')
  await sec.getByLabel('变更说明', { exact: true }).fill('收紧登录失败锁定')
  await sec.getByRole('button', { name: '发布新版本' }).click()
  await fieldError(sec, '连续失败次数', 'must be 3 to 10')
  await threshold.fill('3')
  await sec.getByRole('button', { name: '发布新版本' }).click()
  await sec.getByRole('status').filter({ hasText: '已发布版本 2' }).waitFor()
  await sec.getByRole('row').filter({ hasText: '收紧登录失败锁定' }).getByText('secadmin').waitFor()

  step('a version published elsewhere meanwhile is not overwritten: the page says so and reloads')
  const other = await login({ username: 'secadmin', password: password('secadmin'), totp: totp(secTotp) })
  if (other.status !== 200) throw new Error(`secadmin's login answered ${other.status}`)
  const policy = await (await fetch(`${base}/api/security/policy`, { headers: { authorization: `Bearer ${other.json.token}` } })).json()
  const put = await fetch(`${base}/api/security/policy`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${other.json.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ base_version: policy.version, policy: { ...policy.policy, lockout_minutes: 30 }, note: '另一处修改' }),
  })
  if (put.status !== 200) throw new Error(`the other publication answered ${put.status}`)
  await sec.getByLabel('空闲超时（分钟）', { exact: true }).fill('20')
  await sec.getByRole('button', { name: '发布新版本' }).click()
  await sec.getByRole('alert').filter({ hasText: '其他管理员刚刚发布了新版本' }).waitFor()
  await sec.getByText('当前版本 3').waitFor()
  if ((await sec.getByLabel('锁定时长（分钟）', { exact: true }).inputValue()) !== '30') throw new Error('the page did not reload the newer version')

  step('the new threshold is in force: three wrong passwords lock the operator out')
  for (let i = 1; i <= 3; i++) {
    const r = await login({ username: USER, password: `wrong-${i}` })
    const want = i < 3 ? 'invalid_credentials' : 'account_locked'
    if (r.json.code !== want) throw new Error(`wrong password ${i} answered ${r.json.code}, not ${want}`)
  }

  for (const p of [sys, op, sec]) p.check()
  console.log('admin end-to-end: ok')
} finally {
  await browser.close()
}
