// The words of track playback, shared by its page and components.
import { lang, messages, when } from '../i18n'
import { rfc3339 } from './range'

export const m = messages({
  track: ['轨迹回放', 'Track playback'],
  vehicle: ['车辆详情', 'Vehicle'],
  lastHour: ['近 1 小时', 'Last hour'],
  today: ['今天', 'Today'],
  yesterday: ['昨天', 'Yesterday'],
  last24h: ['近 24 小时', 'Last 24 h'],
  from: ['开始时间', 'From'],
  to: ['结束时间', 'To'],
  minStop: ['停车不少于', 'Min. stop'],
  minutes: ['分钟', 'min'],
  query: ['查询', 'Show'],
  limits: [
    '时间均为北京时间。最长可查 31 天，至多 20 万个定位点；超过 1 万个点时地图和图表抽稀显示，导出文件含全部定位点。',
    'Times are Beijing time. At most 31 days and 200,000 positions; beyond 10,000 positions the map and the chart are thinned out, the exports carry every position.',
  ],
  badRange: ['请填写开始时间和结束时间', 'Enter a start and an end'],
  badOrder: ['结束时间须晚于开始时间', 'The end must be after the start'],
  badSpan: ['时段最长 31 天，请缩短', 'A range is at most 31 days: narrow it'],
  tooMany: ['该时段定位点超过 20 万个，请缩短时段。', 'More than 200,000 positions in this range: narrow it.'],
  downsampled: [
    '该时段共 {n} 个定位点，地图和图表显示其中 {m} 个（保留起点、终点、报警点和速度峰值）；统计和导出按全部定位点。',
    '{n} positions in this range; the map and the chart show {m} of them (the ends, alarm points and speed peaks kept); the summary and the exports use them all.',
  ],
  empty: ['该时段无定位数据', 'No positions in this period'],
  play: ['播放', 'Play'],
  pause: ['暂停', 'Pause'],
  rate: ['回放速度', 'Playback speed'],
  position: ['回放位置', 'Playback position'],
  time: ['时间', 'Time'],
  speed: ['速度', 'Speed'],
  heading: ['方向', 'Heading'],
  odometer: ['里程表', 'Odometer'],
  travelled: ['已行驶', 'Travelled'],
  summary: ['轨迹统计', 'Summary'],
  distance: ['行驶距离', 'Distance'],
  mileage: ['里程表里程', 'Odometer mileage'],
  maxSpeed: ['最高速度', 'Top speed'],
  stopsCount: ['停车次数', 'Stops'],
  driving: ['行驶时长', 'Driving time'],
  points: ['定位点数', 'Positions'],
  exportCsv: ['导出 CSV', 'Export CSV'],
  exportGpx: ['导出 GPX', 'Export GPX'],
  stops: ['停车列表', 'Stops'],
  noStops: ['该时段无符合条件的停车', 'No stops of this length in this period'],
  duration: ['时长', 'Duration'],
  place: ['位置', 'Where'],
  show: ['定位', 'Show'],
  showStop: ['在地图上显示停车', 'Show stop on the map'],
  exportStops: ['导出停车列表', 'Export the stops'],
  stop: ['停车', 'Stop'],
  start: ['起点', 'Start'],
  end: ['终点', 'End'],
  startMark: ['起', 'S'],
  endMark: ['终', 'E'],
  alarm: ['报警', 'Alarm'],
  map: ['轨迹地图', 'Track map'],
  chart: ['速度曲线：横轴为时间，纵轴为速度（km/h），灰色区域为停车', 'Speed over time (km/h); grey areas are stops'],
  limit: ['限速', 'Limit'],
  slow: ['慢', 'slow'],
  fast: ['快', 'fast'],
  gap: ['虚线：数据中断', 'Dashed: no positions'],
})

/// `ms` as the district reads it (Beijing time, in the console's language).
export const at = (ms: number) => when(new Date(ms).toISOString())

/// A duration in hours and minutes (seconds, under a minute).
export function duration(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 1000)} ${lang.value === 'en' ? 's' : '秒'}`
  const min = Math.round(ms / 60_000)
  const [h, mm] = [Math.floor(min / 60), min % 60]
  if (lang.value === 'en') return h ? `${h} h ${mm} min` : `${mm} min`
  return h ? `${h} 小时 ${mm} 分` : `${mm} 分钟`
}

export const km = (m: number) => `${(m / 1000).toFixed(1)} km`

/// The end of an interval: its clock time when on the start's day (Beijing), else in full.
export function until(fromMs: number, toMs: number): string {
  const [a, b] = [rfc3339(fromMs), rfc3339(toMs)]
  return a.slice(0, 10) === b.slice(0, 10) ? b.slice(11, 19) : at(toMs)
}
