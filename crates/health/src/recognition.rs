//! Result mutual recognition (检查检验结果互认, 智能医疗 三(五)): the items whose recent results
//! from another institution are shown to a clinician about to order them again, and how recent
//! counts. The list is data (`kb/recognition.toml`, the health commission's to edit), read and
//! checked here.

use serde::{Deserialize, Serialize};

/// The list shipped with the platform.
pub const STARTER: &str = include_str!("../kb/recognition.toml");

/// One recognised item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RecognisedItem)]
pub struct Item {
    pub id: String,
    pub name: String,
    /// LOINC codes that count as the same result.
    pub codes: Vec<String>,
    /// Results this many days old or newer are recognised.
    pub window_days: u32,
    /// lab, imaging or ecg.
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RecognitionList)]
pub struct List {
    pub version: String,
    #[serde(rename = "item")]
    pub items: Vec<Item>,
}

impl List {
    /// Reads and checks a list: ids unique, codes LOINC-shaped and in one item only, windows
    /// 1 to 365 days, known kinds. The error names the item.
    pub fn parse(text: &str) -> Result<Self, String> {
        let l: List = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut ids = std::collections::BTreeSet::new();
        let mut codes = std::collections::BTreeSet::new();
        for (i, it) in l.items.iter().enumerate() {
            let at = format!("item[{i}] ({})", it.id);
            if it.id.is_empty() || !ids.insert(it.id.clone()) {
                return Err(format!("{at}: an id, once"));
            }
            if !(1..=365).contains(&it.window_days) {
                return Err(format!("{at}: window_days 1 to 365"));
            }
            if !["lab", "imaging", "ecg"].contains(&it.kind.as_str()) {
                return Err(format!("{at}: kind lab, imaging or ecg"));
            }
            if it.codes.is_empty() {
                return Err(format!("{at}: at least one code"));
            }
            for c in &it.codes {
                let loinc = c.split_once('-').is_some_and(|(n, d)| {
                    !n.is_empty()
                        && n.len() <= 7
                        && n.bytes().all(|b| b.is_ascii_digit())
                        && d.len() == 1
                        && d.bytes().all(|b| b.is_ascii_digit())
                });
                if !loinc {
                    return Err(format!("{at}: {c:?} is not a LOINC code"));
                }
                if !codes.insert(c.clone()) {
                    return Err(format!("{at}: {c} is in another item already"));
                }
            }
        }
        Ok(l)
    }

    /// The shipped list.
    pub fn starter() -> Self {
        // Checked by a test: the shipped file parses.
        Self::parse(STARTER).unwrap_or(List { version: "invalid".into(), items: vec![] })
    }

    /// The item a code or an item id belongs to.
    pub fn find(&self, code_or_id: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.id == code_or_id || i.codes.iter().any(|c| c == code_or_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_list_parses_and_finds_by_code_or_id() {
        let l = List::parse(STARTER).unwrap_or_else(|e| panic!("{e}"));
        assert!(l.items.len() >= 10);
        assert_eq!(l.find("1558-6").map(|i| i.id.as_str()), Some("glucose-fasting"));
        assert_eq!(l.find("ecg").map(|i| i.window_days), Some(7));
        assert!(l.find("0000-0").is_none());
    }

    #[test]
    fn a_bad_list_names_the_item() {
        let bad =
            "version = \"x\"\n[[item]]\nid = \"a\"\nname = \"A\"\ncodes = [\"123\"]\nwindow_days = 7\nkind = \"lab\"\n";
        assert!(List::parse(bad).unwrap_err().contains("item[0] (a)"));
        let twice = "version = \"x\"\n[[item]]\nid = \"a\"\nname = \"A\"\ncodes = [\"718-7\"]\nwindow_days = 7\nkind = \"lab\"\n\
                     [[item]]\nid = \"b\"\nname = \"B\"\ncodes = [\"718-7\"]\nwindow_days = 7\nkind = \"lab\"\n";
        assert!(List::parse(twice).unwrap_err().contains("another item"));
        let window = STARTER.replacen("window_days = 7", "window_days = 0", 1);
        assert!(List::parse(&window).unwrap_err().contains("window_days"));
        assert!(List::parse("version = 1").is_err());
    }
}
