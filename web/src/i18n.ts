// Chinese first, English switchable. One dictionary per language; a missing English text falls
// back to the Chinese one, so a page never shows a key.
import { ref } from 'vue'

export type Lang = 'zh' | 'en'
const saved = (localStorage.getItem('lang') as Lang | null) ?? 'zh'
export const lang = ref<Lang>(saved === 'en' ? 'en' : 'zh')

const zh = {
  app: '智慧武清平台',
  login: '登录',
  logout: '退出',
  username: '用户名',
  password: '密码',
  totp: '动态口令',
  signingIn: '正在登录…',
  mustChange: '首次登录须修改初始密码',
  oldPassword: '当前密码',
  newPassword: '新密码',
  change: '修改密码',
  passwordPolicy: '至少 {n} 位，含大写字母、小写字母、数字和符号中的三类',
  totpSetup: '管理员须先绑定动态口令（TOTP）',
  totpStart: '生成密钥',
  totpSecret: '在身份验证器中添加此密钥',
  totpScan: '用身份验证器扫描此二维码',
  totpOpen: '用身份验证器打开',
  totpEnable: '绑定并进入',
  audit: '审计日志',
  at: '时间',
  actor: '操作人',
  action: '操作',
  target: '对象',
  outcome: '结果',
  users: '用户',
  displayName: '姓名',
  role: '角色',
  clearance: '密级',
  phone: '手机号',
  locked: '已锁定',
  overview: '综合态势',
  alarms: '报警处置',
  vehiclesOnline: '在线车辆',
  vehiclesTotal: '车辆总数',
  alarmsToday: '今日报警',
  openAlarms: '待处置报警',
  loading: '加载中…',
  empty: '暂无数据',
  severity: '级别',
  kind: '类型',
  subject: '对象',
  started: '开始时间',
  status: '状态',
  actions: '操作',
  acknowledge: '确认',
  handle: '处置',
  close: '关闭',
  supervise: '督办',
  note: '说明',
  newAlarm: '新报警',
  live: '实时',
  reconnecting: '正在重连…',
  notFound: '页面不存在',
  vehicles: '车辆',
  plate: '车牌号',
  vehicleClass: '车辆类型',
  terminal: '终端手机号',
  registered: '登记时间',
  all: '全部',
  orgs: '组织机构',
  tokens: '接口令牌',
  security: '安全设置',
  map: '实时监控',
  terminals: '终端',
  enterprises: '企业档案',
}
type Dict = typeof zh
const en: Partial<Dict> = {
  app: 'Wuqing Smart District',
  login: 'Sign in',
  logout: 'Sign out',
  username: 'User name',
  password: 'Password',
  totp: 'One-time code',
  signingIn: 'Signing in…',
  mustChange: 'Change your initial password first',
  oldPassword: 'Current password',
  newPassword: 'New password',
  change: 'Change password',
  passwordPolicy: 'At least {n} characters, three of: upper case, lower case, digits, symbols',
  totpSetup: 'Administrators enrol a second factor (TOTP) first',
  totpStart: 'Create a secret',
  totpSecret: 'Add this secret to your authenticator',
  totpScan: 'Scan this QR code with your authenticator',
  totpOpen: 'Open in an authenticator',
  totpEnable: 'Enrol and continue',
  audit: 'Audit log',
  at: 'Time',
  actor: 'Actor',
  action: 'Action',
  target: 'Target',
  outcome: 'Outcome',
  users: 'Users',
  displayName: 'Name',
  role: 'Role',
  clearance: 'Clearance',
  phone: 'Phone',
  locked: 'Locked',
  overview: 'Overview',
  alarms: 'Alarm desk',
  vehiclesOnline: 'Vehicles online',
  vehiclesTotal: 'Vehicles',
  alarmsToday: 'Alarms today',
  openAlarms: 'Open alarms',
  loading: 'Loading…',
  empty: 'Nothing here',
  severity: 'Severity',
  kind: 'Kind',
  subject: 'Subject',
  started: 'Started',
  status: 'Status',
  actions: 'Actions',
  acknowledge: 'Acknowledge',
  handle: 'Handle',
  close: 'Close',
  supervise: 'Supervise',
  note: 'Note',
  newAlarm: 'New alarm',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  notFound: 'No such page',
  vehicles: 'Vehicles',
  plate: 'Plate',
  vehicleClass: 'Class',
  terminal: 'Terminal phone',
  registered: 'Registered',
  all: 'All',
  orgs: 'Organisations',
  tokens: 'API tokens',
  security: 'Security',
  map: 'Live map',
  terminals: 'Terminals',
  enterprises: 'Enterprises',
}

export function t(key: keyof Dict): string {
  return (lang.value === 'en' ? en[key] : undefined) ?? zh[key]
}

export function setLang(l: Lang) {
  lang.value = l
  localStorage.setItem('lang', l)
  document.documentElement.lang = l === 'zh' ? 'zh-CN' : 'en'
}

// Labels of the platform's codes (vehicle classes, severities, statuses, alarm kinds): Chinese
// first; an unknown code is shown as it is.
const codes: Record<string, [string, string]> = {
  dangerous_goods: ['危险货物运输车', 'Dangerous goods'],
  coach: ['班线客车', 'Coach'],
  tourist_coach: ['旅游包车', 'Tourist coach'],
  school_bus: ['校车', 'School bus'],
  city_bus: ['公交车', 'City bus'],
  taxi: ['出租车', 'Taxi'],
  heavy_goods: ['重型货车', 'Heavy goods'],
  notice: ['提示', 'Notice'],
  minor: ['一般', 'Minor'],
  moderate: ['较重', 'Moderate'],
  major: ['严重', 'Major'],
  critical: ['特别严重', 'Critical'],
  raised: ['待确认', 'Raised'],
  acknowledged: ['已确认', 'Acknowledged'],
  handled: ['已处置', 'Handled'],
  closed: ['已关闭', 'Closed'],
  overspeed: ['超速', 'Overspeed'],
  night_overspeed: ['夜间超速', 'Night overspeed'],
  fatigue_continuous: ['疲劳驾驶', 'Fatigue'],
  fatigue_continuous_pre_warning: ['疲劳驾驶预警', 'Fatigue pre-warning'],
  fatigue_daily: ['日累计驾驶超时', 'Daily driving'],
  fatigue_weekly: ['周累计驾驶超时', 'Weekly driving'],
  curfew: ['凌晨2-5时运行', 'Curfew'],
  offline: ['离线', 'Offline'],
  offline_long: ['长时间离线', 'Long offline'],
  offline_driving: ['离线行驶', 'Offline driving'],
  geofence_enter: ['进区域', 'Entered area'],
  geofence_leave: ['出区域', 'Left area'],
  geofence_dwell: ['区域停留超时', 'Dwell'],
  route_deviation: ['偏离路线', 'Route deviation'],
  segment_time: ['路段行驶时间异常', 'Segment time'],
  position_drift: ['定位漂移', 'Drift'],
  invalid_data: ['数据无效', 'Invalid data'],
  cold_store_temp_high: ['冷库温度过高', 'Cold store too warm'],
  cold_store_temp_low: ['冷库温度过低', 'Cold store too cold'],
  reefer_temp_high: ['冷藏车厢温度过高', 'Reefer too warm'],
  reefer_temp_low: ['冷藏车厢温度过低', 'Reefer too cold'],
  freezer_temp_high: ['冷冻温度过高', 'Freezer too warm'],
  bp_systolic_urgent: ['收缩压危急', 'Systolic BP urgent'],
  bp_diastolic_urgent: ['舒张压危急', 'Diastolic BP urgent'],
  pm25_high: ['PM2.5 超标', 'PM2.5 high'],
  water_level_high: ['水位超警戒', 'Water level high'],
  phoned_driver: ['电话联系', 'Phoned'],
  sent_message: ['下发消息', 'Sent a message'],
  dispatched: ['派员处置', 'Dispatched'],
  false_alarm: ['误报', 'False alarm'],
  other: ['其他', 'Other'],
  success: ['成功', 'Success'],
  denied: ['拒绝', 'Denied'],
  failure: ['失败', 'Failure'],
}

export function label(code: string): string {
  const l = codes[code]
  return l ? l[lang.value === 'en' ? 1 : 0] : code
}

/// A time as the district reads it: Beijing time, in the console's language.
export function when(iso: string): string {
  return new Date(iso).toLocaleString(lang.value === 'en' ? 'en-GB' : 'zh-CN', { timeZone: 'Asia/Shanghai', hour12: false })
}

/// A page's own texts, as [Chinese, English] pairs, so that each page carries the words only it
/// uses: `const m = messages({ title: ['地图', 'Map'] })`, then `m('title')` in the template.
export function messages<K extends string>(dict: Record<K, [string, string]>): (key: K) => string {
  return (key: K) => dict[key][lang.value === 'en' ? 1 : 0]
}
