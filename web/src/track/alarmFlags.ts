// The alarm flags of a JT/T 808 position report (2019 table 24; 2013 where the bits agree).
import { lang } from '../i18n'

const FLAGS: [string, string][] = [
  ['紧急报警', 'Emergency'],
  ['超速报警', 'Overspeed'],
  ['疲劳驾驶报警', 'Fatigue driving'],
  ['危险驾驶行为报警', 'Dangerous driving'],
  ['GNSS 模块故障', 'GNSS module fault'],
  ['GNSS 天线未接或被剪断', 'GNSS antenna cut'],
  ['GNSS 天线短路', 'GNSS antenna short circuit'],
  ['终端主电源欠压', 'Main power low'],
  ['终端主电源掉电', 'Main power off'],
  ['终端显示器故障', 'Display fault'],
  ['TTS 模块故障', 'TTS module fault'],
  ['摄像头故障', 'Camera fault'],
  ['道路运输证 IC 卡模块故障', 'IC card module fault'],
  ['超速预警', 'Overspeed warning'],
  ['疲劳驾驶预警', 'Fatigue warning'],
  ['违规行驶报警', 'Illegal driving'],
  ['胎压预警', 'Tyre pressure warning'],
  ['右转盲区异常报警', 'Right-turn blind spot'],
  ['当天累计驾驶超时', 'Daily driving time exceeded'],
  ['超时停车', 'Parked too long'],
  ['进出区域', 'Area entered or left'],
  ['进出路线', 'Route entered or left'],
  ['路段行驶时间不足/过长', 'Segment time too short or long'],
  ['路线偏离报警', 'Route deviation'],
  ['车辆 VSS 故障', 'Speed sensor fault'],
  ['车辆油量异常', 'Fuel level abnormal'],
  ['车辆被盗', 'Vehicle stolen'],
  ['车辆非法点火', 'Illegal ignition'],
  ['车辆非法位移', 'Illegal displacement'],
  ['碰撞侧翻报警', 'Collision'],
  ['侧翻预警', 'Rollover warning'],
  ['非法开门报警', 'Illegal door opening'],
]

/// The labels of the flags set in `mask`, in the console's language.
export function alarmLabels(mask: number): string[] {
  return FLAGS.filter((_, bit) => (mask >>> bit) & 1).map((l) => l[lang.value === 'en' ? 1 : 0])
}
