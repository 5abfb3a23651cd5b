//! The alarm (报警) and its handling steps, as stored and as the desk sees them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Severity (报警等级), from a notice to an emergency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// 提示: worth a look (a pre-warning).
    Notice,
    /// 一般
    Minor,
    /// 较重
    Moderate,
    /// 严重
    Major,
    /// 特别严重: handle at once.
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [Self::Notice, Self::Minor, Self::Moderate, Self::Major, Self::Critical];
    /// Stored as 1–5, so that the desk can order and filter by it.
    pub fn level(self) -> i64 {
        match self {
            Self::Notice => 1,
            Self::Minor => 2,
            Self::Moderate => 3,
            Self::Major => 4,
            Self::Critical => 5,
        }
    }
    pub fn from_level(l: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.level() == l)
    }
}

/// Where an alarm is in its handling (处置流程).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// 已报警: raised, nobody has looked at it yet.
    Raised,
    /// 已确认: an operator has seen it.
    Acknowledged,
    /// 已处置: an action was taken.
    Handled,
    /// 已关闭
    Closed,
}

impl Status {
    pub const ALL: [Status; 4] = [Self::Raised, Self::Acknowledged, Self::Handled, Self::Closed];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raised => "raised",
            Self::Acknowledged => "acknowledged",
            Self::Handled => "handled",
            Self::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// What the enterprise did about an alarm (处置措施).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// 电话联系驾驶员
    PhonedDriver,
    /// 下发消息 (text or TTS to the terminal)
    SentMessage,
    /// 派员处置
    Dispatched,
    /// 误报
    FalseAlarm,
    /// 其他
    Other,
}

impl Action {
    pub const ALL: [Action; 5] =
        [Self::PhonedDriver, Self::SentMessage, Self::Dispatched, Self::FalseAlarm, Self::Other];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PhonedDriver => "phoned_driver",
            Self::SentMessage => "sent_message",
            Self::Dispatched => "dispatched",
            Self::FalseAlarm => "false_alarm",
            Self::Other => "other",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// What a rule engine reports: an episode of a condition on a subject. Raising the same episode
/// again (same domain, kind, subject and start) updates the open alarm instead of adding one.
#[derive(Debug, Clone)]
pub struct NewAlarm {
    /// The domain that owns the rule: `transport`, later `coldchain`, `farm`, …
    pub domain: String,
    /// The rule kind: `overspeed`, `fatigue`, `offline`, …
    pub kind: String,
    pub severity: Severity,
    /// `vehicle`, `device`, …
    pub subject_type: String,
    pub subject_id: String,
    /// What a person reads: a plate number, a cold store's name.
    pub subject_label: String,
    /// The organisation responsible for handling it (the enterprise that owns the subject).
    pub org_id: String,
    /// When the condition began (device time, ms).
    pub started_ms: i64,
    /// When this report of it was made (device time, ms).
    pub at_ms: i64,
    /// The version of the rule set that raised it.
    pub rule_version: i64,
    /// Kind-specific figures (speed and limit, driving minutes, …).
    pub details: serde_json::Value,
    /// The observations that show it (a few positions or readings).
    pub evidence: serde_json::Value,
}

/// The subject of an alarm.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Subject {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub label: String,
}

/// An alarm as the desk sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Alarm {
    pub id: String,
    pub domain: String,
    pub kind: String,
    pub severity: Severity,
    pub subject: Subject,
    pub org_id: String,
    pub status: Status,
    pub started_at: String,
    /// The newest report of the condition.
    pub last_at: String,
    /// When the condition ended, if it has.
    pub ended_at: Option<String>,
    /// How many reports of the condition were folded into this alarm.
    pub triggers: i64,
    pub rule_version: i64,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// The observations that show it (a few positions or readings).
    #[schema(value_type = Vec<Object>)]
    pub evidence: serde_json::Value,
    pub action: Option<Action>,
    /// A regulator asked for it to be handled (督办).
    pub supervised: bool,
    pub acknowledged_at: Option<String>,
    pub handled_at: Option<String>,
    pub closed_at: Option<String>,
    /// Who did what, oldest first (only in the single-alarm view).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<Step>>,
}

/// One step of an alarm's handling.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Step {
    pub seq: i64,
    pub at: String,
    /// `raised`, `acknowledged`, `handled`, `closed`, `supervised`.
    pub step: String,
    /// Who: a username, or `rules` for the engine.
    pub actor: String,
    pub note: String,
}
