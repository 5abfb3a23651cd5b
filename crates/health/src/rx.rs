//! Rational drug use (合理用药, 智能医疗 三(八)): prescription checks against a knowledge base that
//! is data, not code. Pure: the knowledge base is read from its file, a prescription is checked
//! against what the platform knows of the patient, and the findings come back with their rule,
//! severity and source. The server turns them into FHIR DetectedIssues (`rx_api`).
//!
//! # The knowledge base file (TOML)
//!
//! ```toml
//! format = 1                       # this format; a file of another is refused
//! version = "2026.12-starter"      # the knowledge base's own version, named on every finding
//! title = "…"
//!
//! [[class]]                        # therapeutic classes
//! id = "statin"
//! name = "他汀类"
//! duplicate = "moderate"           # two different drugs of the class together: duplicate therapy
//! source = "…"                     # required with `duplicate`
//!
//! [[drug]]
//! id = "atorvastatin"
//! name = "阿托伐他汀"
//! names = ["阿托伐他汀钙", "立普妥", "atorvastatin"]  # matched in a medication's text
//! atc = "C10AA05"                  # matched in a coding of system http://www.whocc.no/atc
//! classes = ["statin"]
//! max_daily_mg = 80                # optional: the adult maximum daily dose
//! source = "…"                     # required
//!
//! [[interaction]]                  # a, b: a drug id or "class:<id>", in either order
//! id = "…"; a = "simvastatin"; b = "class:macrolide"; except = ["azithromycin"]
//! severity = "high"; effect = "…"; advice = "…"; source = "…"
//!
//! [[contraindication]]             # conditions: ICD-10 code prefixes of active Conditions
//! id = "…"; drug = "metformin"; conditions = ["N18.4", "N18.5"]; severity = "high"; effect = "…"; source = "…"
//!
//! [[allergy]]                      # allergen terms found in an AllergyIntolerance's code
//! id = "…"; allergen = ["青霉素", "penicillin", "J01C"]; drugs = ["class:penicillin"]; severity = "high"; effect = "…"; source = "…"
//!
//! [[age]]                          # `under` years, or `from` years on
//! id = "…"; drug = "class:fluoroquinolone"; under = 18; severity = "high"; effect = "…"; source = "…"
//!
//! [[pregnancy]]                    # when an active Condition says the patient is pregnant
//! id = "…"; drug = "class:statin"; severity = "high"; effect = "…"; source = "…"
//! ```
//!
//! Every rule names its source; unknown fields, unknown drugs or classes, repeated ids and a
//! missing source are refused with the path of the offending entry (`interaction[3].b`).
//! Severity `high` blocks a prescription unless the prescriber overrides it with a reason;
//! `moderate` and `low` are shown and recorded. The starter set is `kb/rx.toml`.
//!
//! Lookups are precomputed when the file is read (every pair of drugs' interactions and
//! duplicate classes, each drug's rules), so a check is a few table reads per medicine.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use utoipa::ToSchema;

/// The starter knowledge base shipped with the platform.
pub const STARTER: &str = include_str!("../kb/rx.toml");

/// The ATC system URI of FHIR codings.
pub const ATC: &str = "http://www.whocc.no/atc";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = RxSeverity)]
pub enum Severity {
    Low,
    Moderate,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Moderate => "moderate",
            Severity::High => "high",
        }
    }
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = RxFindingKind)]
pub enum Kind {
    /// 药物相互作用
    Interaction,
    /// 重复用药
    Duplicate,
    /// 超最大日剂量
    Dose,
    /// 过敏
    Allergy,
    /// 疾病禁忌
    Condition,
    /// 年龄 (儿童、老年)
    Age,
    /// 妊娠
    Pregnancy,
}

impl Kind {
    /// The code of FHIR's DetectedIssue category (v3 ActCode) for this kind.
    pub fn act_code(self) -> (&'static str, &'static str) {
        match self {
            Kind::Interaction => ("DRG", "Drug Interaction Alert"),
            Kind::Duplicate => ("DUPTHPY", "Duplicate Therapy Alert"),
            Kind::Dose => ("DOSEHINDA", "High Dose Alert"),
            Kind::Allergy => ("ALGY", "Allergy Alert"),
            Kind::Condition => ("COND", "Condition Alert"),
            Kind::Age => ("AGE", "Age Alert"),
            Kind::Pregnancy => ("PREG", "Pregnancy Alert"),
        }
    }
}

/// One finding of a check.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = RxFinding)]
pub struct Finding {
    /// The rule's id in the knowledge base (a class id for a duplicate, `max-dose:<drug>`).
    pub rule: String,
    pub kind: Kind,
    pub severity: Severity,
    /// The prescribed drug (knowledge base id) and its name.
    pub drug: String,
    pub drug_name: String,
    /// The other party: a drug (interaction, duplicate), the condition's code, the allergy's
    /// term, the age.
    pub with: Option<String>,
    pub detail: String,
    pub advice: Option<String>,
    pub source: String,
}

/// A knowledge base refused: the entry and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct KbError {
    pub path: String,
    pub message: String,
}

fn err(path: impl Into<String>, message: impl Into<String>) -> KbError {
    KbError { path: path.into(), message: message.into() }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKb {
    format: u32,
    version: String,
    title: String,
    #[serde(default)]
    class: Vec<RawClass>,
    #[serde(default)]
    drug: Vec<RawDrug>,
    #[serde(default)]
    interaction: Vec<RawInteraction>,
    #[serde(default)]
    contraindication: Vec<RawContraindication>,
    #[serde(default)]
    allergy: Vec<RawAllergy>,
    #[serde(default)]
    age: Vec<RawAge>,
    #[serde(default)]
    pregnancy: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClass {
    id: String,
    name: String,
    duplicate: Option<Severity>,
    source: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDrug {
    id: String,
    name: String,
    #[serde(default)]
    names: Vec<String>,
    atc: Option<String>,
    #[serde(default)]
    classes: Vec<String>,
    max_daily_mg: Option<f64>,
    source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInteraction {
    id: String,
    a: String,
    b: String,
    #[serde(default)]
    except: Vec<String>,
    severity: Severity,
    effect: String,
    advice: Option<String>,
    source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContraindication {
    id: String,
    drug: String,
    conditions: Vec<String>,
    severity: Severity,
    effect: String,
    source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllergy {
    id: String,
    allergen: Vec<String>,
    drugs: Vec<String>,
    severity: Severity,
    effect: String,
    source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAge {
    id: String,
    drug: String,
    under: Option<u32>,
    from: Option<u32>,
    severity: Severity,
    effect: String,
    source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    drug: String,
    severity: Severity,
    effect: String,
    source: String,
}

/// A drug of the knowledge base.
#[derive(Debug, Clone)]
pub struct Drug {
    pub id: String,
    pub name: String,
    pub atc: Option<String>,
    pub classes: Vec<usize>,
    pub max_daily_mg: Option<f64>,
    pub source: String,
}

#[derive(Debug, Clone)]
struct Class {
    id: String,
    duplicate: Option<(Severity, String)>,
}

/// A rule about one drug and something of the patient's (a condition, an allergy, the age,
/// pregnancy).
#[derive(Debug, Clone)]
struct PatientRule {
    id: String,
    kind: Kind,
    severity: Severity,
    effect: String,
    source: String,
    /// Condition code prefixes, or allergen terms (lower case).
    terms: Vec<String>,
    under: Option<u32>,
    from: Option<u32>,
}

#[derive(Debug, Clone)]
struct Interaction {
    id: String,
    severity: Severity,
    effect: String,
    advice: Option<String>,
    source: String,
}

/// The knowledge base, read and indexed.
#[derive(Debug, Clone)]
pub struct KnowledgeBase {
    pub version: String,
    pub title: String,
    pub drugs: Vec<Drug>,
    classes: Vec<Class>,
    by_id: HashMap<String, usize>,
    by_atc: HashMap<String, usize>,
    /// Names in lower case, longest first (the most specific name wins).
    names: Vec<(String, usize)>,
    interactions: Vec<Interaction>,
    /// For drugs `i < j`: the interactions between them.
    pairs: HashMap<(usize, usize), Vec<usize>>,
    /// For drugs `i < j`: the classes both belong to that make them a duplicate therapy.
    duplicates: HashMap<(usize, usize), Vec<usize>>,
    /// Each drug's rules about the patient.
    patient_rules: Vec<Vec<PatientRule>>,
    pub counts: Counts,
}

/// How many entries of each kind the knowledge base holds.
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
#[schema(as = RxKbCounts)]
pub struct Counts {
    pub drugs: usize,
    pub classes: usize,
    pub interactions: usize,
    pub contraindications: usize,
    pub allergies: usize,
    pub age: usize,
    pub pregnancy: usize,
}

/// A drug or every drug of a class, as rules name them.
enum Target {
    Drug(usize),
    Class(usize),
}

impl KnowledgeBase {
    /// Reads and checks a knowledge base file.
    pub fn parse(text: &str) -> Result<Self, KbError> {
        let raw: RawKb = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| line_of(text, s.start)).map(|l| format!("line {l}")).unwrap_or_default();
            err(at, e.message().to_string())
        })?;
        if raw.format != 1 {
            return Err(err("format", format!("format {} is not known (this platform reads format 1)", raw.format)));
        }
        let text_field = |path: String, s: &str| -> Result<String, KbError> {
            let t = s.trim();
            if t.is_empty() || t.chars().count() > 2_000 {
                return Err(err(path, "empty or longer than 2 000 characters"));
            }
            Ok(t.to_string())
        };
        let version = text_field("version".into(), &raw.version)?;
        let title = text_field("title".into(), &raw.title)?;
        let mut ids = BTreeSet::new();
        let mut unique = |path: &str, id: &str| -> Result<(), KbError> {
            let ok = !id.is_empty()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
            if !ok {
                return Err(err(format!("{path}.id"), "an id is 1–64 of a–z, 0–9, '_' and '-'"));
            }
            if !ids.insert(id.to_string()) {
                return Err(err(format!("{path}.id"), format!("{id:?} is used twice")));
            }
            Ok(())
        };
        let mut classes = vec![];
        let mut class_ix = HashMap::new();
        for (i, c) in raw.class.iter().enumerate() {
            let path = format!("class[{i}]");
            unique(&path, &c.id)?;
            text_field(format!("{path}.name"), &c.name)?;
            let duplicate = match (&c.duplicate, &c.source) {
                (Some(s), Some(src)) => Some((*s, text_field(format!("{path}.source"), src)?)),
                (Some(_), None) => return Err(err(format!("{path}.source"), "a duplicate rule names its source")),
                (None, _) => None,
            };
            class_ix.insert(c.id.clone(), classes.len());
            classes.push(Class { id: c.id.clone(), duplicate });
        }
        let mut drugs = vec![];
        let mut by_id = HashMap::new();
        let mut by_atc = HashMap::new();
        let mut names = vec![];
        for (i, d) in raw.drug.iter().enumerate() {
            let path = format!("drug[{i}]");
            unique(&path, &d.id)?;
            let name = text_field(format!("{path}.name"), &d.name)?;
            let source = text_field(format!("{path}.source"), &d.source)?;
            let mut cls = vec![];
            for (k, c) in d.classes.iter().enumerate() {
                cls.push(
                    *class_ix.get(c).ok_or_else(|| err(format!("{path}.classes[{k}]"), format!("no class {c:?}")))?,
                );
            }
            if let Some(m) = d.max_daily_mg {
                if !(m.is_finite() && m > 0.0 && m < 1e7) {
                    return Err(err(format!("{path}.max_daily_mg"), "a positive number of milligrams"));
                }
            }
            let ix = drugs.len();
            if let Some(a) = &d.atc {
                if a.len() < 3 || a.len() > 7 || !a.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(err(format!("{path}.atc"), "an ATC code such as C10AA05"));
                }
                if by_atc.insert(a.to_ascii_uppercase(), ix).is_some() {
                    return Err(err(format!("{path}.atc"), format!("{a} belongs to another drug")));
                }
            }
            for n in d.names.iter().chain([&d.name, &d.id]) {
                let n = n.trim().to_lowercase();
                if n.chars().count() >= 2 && !names.iter().any(|(x, j)| *x == n && *j == ix) {
                    names.push((n, ix));
                }
            }
            by_id.insert(d.id.clone(), ix);
            drugs.push(Drug {
                id: d.id.clone(),
                name,
                atc: d.atc.clone(),
                classes: cls,
                max_daily_mg: d.max_daily_mg,
                source,
            });
        }
        names.sort_by(|a, b| b.0.chars().count().cmp(&a.0.chars().count()).then(a.0.cmp(&b.0)));
        let target = |path: String, s: &str| -> Result<Target, KbError> {
            match s.strip_prefix("class:") {
                Some(c) => {
                    class_ix.get(c).map(|i| Target::Class(*i)).ok_or_else(|| err(path, format!("no class {c:?}")))
                }
                None => by_id.get(s).map(|i| Target::Drug(*i)).ok_or_else(|| err(path, format!("no drug {s:?}"))),
            }
        };
        let members = |t: &Target| -> Vec<usize> {
            match t {
                Target::Drug(d) => vec![*d],
                Target::Class(c) => (0..drugs.len()).filter(|d| drugs[*d].classes.contains(c)).collect(),
            }
        };
        let mut interactions = vec![];
        let mut pairs: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
        for (i, r) in raw.interaction.iter().enumerate() {
            let path = format!("interaction[{i}]");
            unique(&path, &r.id)?;
            let a = members(&target(format!("{path}.a"), &r.a)?);
            let b = members(&target(format!("{path}.b"), &r.b)?);
            let mut except = vec![];
            for (k, e) in r.except.iter().enumerate() {
                except.push(*by_id.get(e).ok_or_else(|| err(format!("{path}.except[{k}]"), format!("no drug {e:?}")))?);
            }
            let ix = interactions.len();
            interactions.push(Interaction {
                id: r.id.clone(),
                severity: r.severity,
                effect: text_field(format!("{path}.effect"), &r.effect)?,
                advice: r.advice.as_deref().map(|a| text_field(format!("{path}.advice"), a)).transpose()?,
                source: text_field(format!("{path}.source"), &r.source)?,
            });
            for &x in &a {
                for &y in &b {
                    if x == y || except.contains(&x) || except.contains(&y) {
                        continue;
                    }
                    let e = pairs.entry((x.min(y), x.max(y))).or_default();
                    if !e.contains(&ix) {
                        e.push(ix);
                    }
                }
            }
        }
        let mut duplicates: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
        for (c, class) in classes.iter().enumerate() {
            if class.duplicate.is_none() {
                continue;
            }
            let m: Vec<usize> = (0..drugs.len()).filter(|d| drugs[*d].classes.contains(&c)).collect();
            for (k, &x) in m.iter().enumerate() {
                for &y in &m[k + 1..] {
                    duplicates.entry((x.min(y), x.max(y))).or_default().push(c);
                }
            }
        }
        let mut patient_rules: Vec<Vec<PatientRule>> = vec![vec![]; drugs.len()];
        let mut add = |targets: Vec<usize>, rule: PatientRule| {
            for d in targets {
                patient_rules[d].push(rule.clone());
            }
        };
        for (i, r) in raw.contraindication.iter().enumerate() {
            let path = format!("contraindication[{i}]");
            unique(&path, &r.id)?;
            if r.conditions.is_empty() {
                return Err(err(format!("{path}.conditions"), "at least one ICD-10 code"));
            }
            for (k, c) in r.conditions.iter().enumerate() {
                if !c.chars().next().is_some_and(|x| x.is_ascii_uppercase()) || c.len() < 2 || c.len() > 8 {
                    return Err(err(format!("{path}.conditions[{k}]"), "an ICD-10 code or its prefix, such as N18.4"));
                }
            }
            let rule = PatientRule {
                id: r.id.clone(),
                kind: Kind::Condition,
                severity: r.severity,
                effect: text_field(format!("{path}.effect"), &r.effect)?,
                source: text_field(format!("{path}.source"), &r.source)?,
                terms: r.conditions.clone(),
                under: None,
                from: None,
            };
            add(members(&target(format!("{path}.drug"), &r.drug)?), rule);
        }
        for (i, r) in raw.allergy.iter().enumerate() {
            let path = format!("allergy[{i}]");
            unique(&path, &r.id)?;
            let terms: Vec<String> =
                r.allergen.iter().map(|t| t.trim().to_lowercase()).filter(|t| t.chars().count() >= 2).collect();
            if terms.is_empty() {
                return Err(err(format!("{path}.allergen"), "at least one term of 2 characters or more"));
            }
            let rule = PatientRule {
                id: r.id.clone(),
                kind: Kind::Allergy,
                severity: r.severity,
                effect: text_field(format!("{path}.effect"), &r.effect)?,
                source: text_field(format!("{path}.source"), &r.source)?,
                terms,
                under: None,
                from: None,
            };
            let mut targets = BTreeSet::new();
            for (k, d) in r.drugs.iter().enumerate() {
                targets.extend(members(&target(format!("{path}.drugs[{k}]"), d)?));
            }
            add(targets.into_iter().collect(), rule);
        }
        for (i, r) in raw.age.iter().enumerate() {
            let path = format!("age[{i}]");
            unique(&path, &r.id)?;
            if r.under.is_some() == r.from.is_some() {
                return Err(err(path, "an age rule has either `under` or `from`"));
            }
            let rule = PatientRule {
                id: r.id.clone(),
                kind: Kind::Age,
                severity: r.severity,
                effect: text_field(format!("{path}.effect"), &r.effect)?,
                source: text_field(format!("{path}.source"), &r.source)?,
                terms: vec![],
                under: r.under,
                from: r.from,
            };
            add(members(&target(format!("{path}.drug"), &r.drug)?), rule);
        }
        for (i, r) in raw.pregnancy.iter().enumerate() {
            let path = format!("pregnancy[{i}]");
            unique(&path, &r.id)?;
            let rule = PatientRule {
                id: r.id.clone(),
                kind: Kind::Pregnancy,
                severity: r.severity,
                effect: text_field(format!("{path}.effect"), &r.effect)?,
                source: text_field(format!("{path}.source"), &r.source)?,
                terms: vec![],
                under: None,
                from: None,
            };
            add(members(&target(format!("{path}.drug"), &r.drug)?), rule);
        }
        let counts = Counts {
            drugs: drugs.len(),
            classes: classes.len(),
            interactions: interactions.len(),
            contraindications: raw.contraindication.len(),
            allergies: raw.allergy.len(),
            age: raw.age.len(),
            pregnancy: raw.pregnancy.len(),
        };
        Ok(KnowledgeBase {
            version,
            title,
            drugs,
            classes,
            by_id,
            by_atc,
            names,
            interactions,
            pairs,
            duplicates,
            patient_rules,
            counts,
        })
    }

    /// The starter knowledge base.
    pub fn starter() -> Self {
        // The shipped file is checked by the tests; a broken one is a build defect.
        Self::parse(STARTER).unwrap_or_else(|e| panic!("the starter knowledge base does not read: {e}"))
    }

    pub fn drug(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// The drug a FHIR `medicationCodeableConcept` names: an ATC coding first (the code or a
    /// product's longer code under it), then a name found in the text or a coding's display.
    pub fn resolve(&self, concept: &serde_json::Value) -> Option<usize> {
        let codings = concept["coding"].as_array().map(Vec::as_slice).unwrap_or_default();
        for c in codings {
            if c["system"].as_str() == Some(ATC) {
                if let Some(d) = c["code"].as_str().and_then(|code| self.by_atc.get(&code.to_ascii_uppercase())) {
                    return Some(*d);
                }
            }
        }
        let texts = codings.iter().filter_map(|c| c["display"].as_str()).chain(concept["text"].as_str());
        for t in texts {
            let t = t.to_lowercase();
            if let Some((_, d)) = self.names.iter().find(|(n, _)| t.contains(n.as_str())) {
                return Some(*d);
            }
        }
        None
    }

    /// Checks the medicines `ordered` (with their daily doses in mg, when known) for a patient
    /// who takes `ctx.current`: findings, the most severe first.
    pub fn check(&self, ordered: &[(usize, Option<f64>)], ctx: &Context) -> Vec<Finding> {
        let mut out = vec![];
        let name = |d: usize| self.drugs[d].name.clone();
        for (k, &(d, daily)) in ordered.iter().enumerate() {
            let drug = &self.drugs[d];
            let finding =
                |rule: String, kind, severity, with: Option<String>, detail: String, advice, source: String| Finding {
                    rule,
                    kind,
                    severity,
                    drug: drug.id.clone(),
                    drug_name: drug.name.clone(),
                    with,
                    detail,
                    advice,
                    source,
                };
            // With the other medicines: those taken, and those ordered before this one.
            let others = ctx.current.iter().copied().chain(ordered[..k].iter().map(|o| o.0));
            let mut seen = BTreeSet::new();
            for o in others {
                if o == d || !seen.insert(o) {
                    continue;
                }
                let key = (d.min(o), d.max(o));
                for &i in self.pairs.get(&key).map(Vec::as_slice).unwrap_or_default() {
                    let r = &self.interactions[i];
                    out.push(finding(
                        r.id.clone(),
                        Kind::Interaction,
                        r.severity,
                        Some(name(o)),
                        r.effect.clone(),
                        r.advice.clone(),
                        r.source.clone(),
                    ));
                }
                // One duplicate finding per pair: the most severe of the classes they share.
                let dup = self.duplicates.get(&key).and_then(|cs| {
                    cs.iter()
                        .filter_map(|c| self.classes[*c].duplicate.as_ref().map(|x| (*c, x)))
                        .max_by_key(|(_, x)| x.0)
                });
                if let Some((c, (severity, source))) = dup {
                    out.push(finding(
                        format!("duplicate:{}", self.classes[c].id),
                        Kind::Duplicate,
                        *severity,
                        Some(name(o)),
                        format!("{}与{}同属一类，重复用药", drug.name, name(o)),
                        None,
                        source.clone(),
                    ));
                }
            }
            if let (Some(max), Some(daily)) = (drug.max_daily_mg, daily) {
                if daily > max * (1.0 + 1e-9) {
                    out.push(finding(
                        format!("max-dose:{}", drug.id),
                        Kind::Dose,
                        Severity::High,
                        Some(format!("{} mg/d", fmt_mg(daily))),
                        format!("日剂量 {} mg 超过最大日剂量 {} mg", fmt_mg(daily), fmt_mg(max)),
                        Some(format!("每日不超过 {} mg", fmt_mg(max))),
                        drug.source.clone(),
                    ));
                }
            }
            for r in &self.patient_rules[d] {
                let with = match r.kind {
                    Kind::Condition => ctx
                        .conditions
                        .iter()
                        .find(|c| r.terms.iter().any(|t| c.to_ascii_uppercase().starts_with(t.as_str())))
                        .cloned(),
                    Kind::Allergy => ctx
                        .allergies
                        .iter()
                        .find(|a| r.terms.iter().any(|t| a.to_lowercase().contains(t.as_str())))
                        .cloned(),
                    Kind::Age => ctx
                        .age_years
                        .filter(|age| r.under.is_some_and(|u| *age < u) || r.from.is_some_and(|f| *age >= f))
                        .map(|age| format!("{age} 岁")),
                    Kind::Pregnancy => ctx.pregnant.then(|| "妊娠".to_string()),
                    _ => None,
                };
                if let Some(with) = with {
                    out.push(finding(
                        r.id.clone(),
                        r.kind,
                        r.severity,
                        Some(with),
                        r.effect.clone(),
                        None,
                        r.source.clone(),
                    ));
                }
            }
        }
        out.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.kind.cmp(&b.kind)).then(a.rule.cmp(&b.rule)));
        out
    }
}

fn fmt_mg(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.2}").trim_end_matches('0').to_string()
    }
}

fn line_of(text: &str, at: usize) -> usize {
    text.get(..at).map(|s| s.matches('\n').count() + 1).unwrap_or(0)
}

/// What the platform knows of the patient for a check.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Whole years of age, if the birth date is known.
    pub age_years: Option<u32>,
    pub pregnant: bool,
    /// ICD-10 codes of the active Conditions.
    pub conditions: Vec<String>,
    /// The active allergies' terms: each coding's code and display, and the text.
    pub allergies: Vec<String>,
    /// The drugs (knowledge base indices) the patient takes: active MedicationRequests and
    /// MedicationStatements.
    pub current: Vec<usize>,
}

/// Whether ICD-10 codes say the patient is pregnant: Z33 (pregnant state) or chapter XV
/// (O00–O9A, pregnancy, childbirth and the puerperium).
pub fn pregnant(conditions: &[String]) -> bool {
    conditions.iter().any(|c| {
        let c = c.to_ascii_uppercase();
        c.starts_with("Z33") || (c.starts_with('O') && c[1..].chars().next().is_some_and(|d| d.is_ascii_digit()))
    })
}

/// The daily dose in milligrams of a MedicationRequest's `dosageInstruction`: for each
/// instruction, the dose (`doseQuantity` in mg, g or µg; the high end of a `doseRange`) times the
/// times a day its timing gives (`frequency` per `period` `periodUnit` h, d or wk, or the
/// count of `timeOfDay`); `None` when no instruction says both.
pub fn daily_mg(dosage: &serde_json::Value) -> Option<f64> {
    let mut total = None;
    for d in dosage.as_array().map(Vec::as_slice).unwrap_or_default() {
        let Some(dose) = d["doseAndRate"].as_array().and_then(|r| {
            r.iter().find_map(|x| {
                let q = if x["doseQuantity"].is_object() { &x["doseQuantity"] } else { &x["doseRange"]["high"] };
                mg(q)
            })
        }) else {
            continue;
        };
        let r = &d["timing"]["repeat"];
        let per_day = match (r["frequency"].as_f64(), r["period"].as_f64(), r["periodUnit"].as_str()) {
            (f, Some(p), Some(u)) if p > 0.0 => {
                let f = f.unwrap_or(1.0);
                match u {
                    "h" => Some(f * 24.0 / p),
                    "d" => Some(f / p),
                    "wk" => Some(f / (7.0 * p)),
                    _ => None,
                }
            }
            _ => r["timeOfDay"].as_array().map(|t| t.len() as f64).filter(|n| *n > 0.0),
        };
        if let Some(n) = per_day {
            *total.get_or_insert(0.0) += dose * n;
        }
    }
    total
}

fn mg(q: &serde_json::Value) -> Option<f64> {
    let v = q["value"].as_f64().filter(|v| v.is_finite() && *v >= 0.0)?;
    let unit = q["code"].as_str().or(q["unit"].as_str())?;
    match unit {
        "mg" => Some(v),
        "g" => Some(v * 1000.0),
        "ug" | "µg" | "mcg" => Some(v / 1000.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kb() -> KnowledgeBase {
        KnowledgeBase::starter()
    }

    fn d(kb: &KnowledgeBase, id: &str) -> usize {
        kb.drug(id).unwrap_or_else(|| panic!("{id}"))
    }

    fn rules(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|x| x.rule.as_str()).collect()
    }

    #[test]
    fn the_starter_set_reads_and_names_a_source_for_every_rule() {
        let kb = kb();
        assert!(kb.counts.drugs >= 40, "{:?}", kb.counts);
        assert!(kb.counts.interactions >= 15);
        for drug in &kb.drugs {
            assert!(!drug.source.is_empty(), "{}", drug.id);
        }
        // Every class the shipped drugs name is covered: antihypertensives, antidiabetics,
        // statins, antibiotics, anticoagulants, NSAIDs.
        for id in [
            "amlodipine",
            "valsartan",
            "metformin",
            "glimepiride",
            "atorvastatin",
            "amoxicillin",
            "levofloxacin",
            "warfarin",
            "clopidogrel",
            "ibuprofen",
        ] {
            d(&kb, id);
        }
    }

    #[test]
    fn each_kind_of_finding() {
        let kb = kb();
        let ctx = Context { current: vec![d(&kb, "simvastatin"), d(&kb, "warfarin")], ..Default::default() };
        // Interaction with a current medicine (class rule, the exception honoured).
        let f = kb.check(&[(d(&kb, "clarithromycin"), None)], &ctx);
        assert!(rules(&f).contains(&"simvastatin-clarithromycin"), "{f:?}");
        assert!(rules(&f).contains(&"warfarin-macrolide"));
        assert_eq!(f[0].severity, Severity::High, "the most severe first");
        let f = kb.check(&[(d(&kb, "azithromycin"), None)], &ctx);
        assert!(!rules(&f).contains(&"simvastatin-clarithromycin"), "azithromycin is excepted: {f:?}");
        // Duplicate therapy: the most severe shared class once per pair.
        let ctx = Context { current: vec![d(&kb, "enalapril")], ..Default::default() };
        let f = kb.check(&[(d(&kb, "losartan"), None)], &ctx);
        assert_eq!(rules(&f), ["duplicate:ras_blocker"]);
        assert_eq!(f[0].severity, Severity::High);
        let f = kb.check(&[(d(&kb, "ibuprofen"), None), (d(&kb, "diclofenac"), None)], &Context::default());
        assert_eq!(rules(&f), ["duplicate:nsaid"], "two ordered together");
        // The same drug again is no duplicate.
        let ctx = Context { current: vec![d(&kb, "amlodipine")], ..Default::default() };
        assert!(kb.check(&[(d(&kb, "amlodipine"), Some(5.0))], &ctx).is_empty());
        // Dose.
        let f = kb.check(&[(d(&kb, "amlodipine"), Some(20.0))], &Context::default());
        assert_eq!((f[0].kind, f[0].severity), (Kind::Dose, Severity::High));
        assert!(f[0].detail.contains("20") && f[0].detail.contains("10"), "{}", f[0].detail);
        assert!(kb.check(&[(d(&kb, "amlodipine"), Some(10.0))], &Context::default()).is_empty(), "the maximum itself");
        // Allergy, with cross-reactivity.
        let ctx = Context { allergies: vec!["青霉素 Penicillin".into()], ..Default::default() };
        let f = kb.check(&[(d(&kb, "amoxicillin"), None)], &ctx);
        assert_eq!((rules(&f), f[0].severity), (vec!["penicillin-allergy"], Severity::High));
        let f = kb.check(&[(d(&kb, "cefuroxime"), None)], &ctx);
        assert_eq!((rules(&f), f[0].severity), (vec!["penicillin-allergy-cephalosporin"], Severity::Moderate));
        // Condition by ICD-10 prefix.
        let ctx = Context { conditions: vec!["N18.5".into(), "I10".into()], ..Default::default() };
        assert_eq!(rules(&kb.check(&[(d(&kb, "metformin"), Some(1000.0))], &ctx)), ["metformin-severe-ckd"]);
        let ctx = Context { conditions: vec!["N18.3".into()], ..Default::default() };
        assert!(kb.check(&[(d(&kb, "metformin"), Some(1000.0))], &ctx).is_empty(), "moderate CKD is not severe");
        // Age, both ways.
        let child = Context { age_years: Some(12), ..Default::default() };
        assert_eq!(rules(&kb.check(&[(d(&kb, "levofloxacin"), None)], &child)), ["fluoroquinolone-under-18"]);
        let adult = Context { age_years: Some(18), ..Default::default() };
        assert!(kb.check(&[(d(&kb, "levofloxacin"), None)], &adult).is_empty());
        let old = Context { age_years: Some(70), ..Default::default() };
        assert_eq!(rules(&kb.check(&[(d(&kb, "ibuprofen"), None)], &old)), ["nsaid-elderly"]);
        // Pregnancy.
        let ctx = Context { pregnant: pregnant(&["Z33.1".into()]), ..Default::default() };
        assert_eq!(rules(&kb.check(&[(d(&kb, "valsartan"), None)], &ctx)), ["ras-pregnancy"]);
        assert!(pregnant(&["O24.4".into()]) && !pregnant(&["I10".into()]) && !pregnant(&["OX".into()]));
    }

    #[test]
    fn medicines_are_found_by_atc_code_or_name() {
        let kb = kb();
        let by_atc = json!({ "coding": [{ "system": ATC, "code": "C10AA05" }] });
        assert_eq!(kb.resolve(&by_atc), Some(d(&kb, "atorvastatin")));
        let by_name = json!({ "text": "苯磺酸氨氯地平片 5 mg Amlodipine" });
        assert_eq!(kb.resolve(&by_name), Some(d(&kb, "amlodipine")));
        // The longest name wins: 阿莫西林克拉维酸钾 is not plain amoxicillin.
        assert_eq!(kb.resolve(&json!({ "text": "阿莫西林克拉维酸钾片" })), Some(d(&kb, "amoxicillin_clavulanate")));
        assert_eq!(kb.resolve(&json!({ "text": "维生素C片" })), None);
        assert_eq!(kb.resolve(&json!({ "coding": [{ "system": "urn:other", "code": "C10AA05" }] })), None);
    }

    #[test]
    fn daily_doses_from_dosage_instructions() {
        let dose = |v: f64, unit: &str, timing: serde_json::Value| json!([{ "timing": timing, "doseAndRate": [{ "doseQuantity": { "value": v, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit } }] }]);
        let tid = json!({ "repeat": { "frequency": 3, "period": 1, "periodUnit": "d" } });
        assert_eq!(daily_mg(&dose(500.0, "mg", tid.clone())), Some(1500.0));
        assert_eq!(daily_mg(&dose(1.0, "g", tid)), Some(3000.0));
        let q8h = json!({ "repeat": { "frequency": 1, "period": 8, "periodUnit": "h" } });
        assert_eq!(daily_mg(&dose(250.0, "mg", q8h)), Some(750.0));
        let weekly = json!({ "repeat": { "frequency": 1, "period": 1, "periodUnit": "wk" } });
        assert_eq!(daily_mg(&dose(70.0, "mg", weekly)), Some(10.0));
        let times = json!({ "repeat": { "timeOfDay": ["08:00:00", "20:00:00"] } });
        assert_eq!(daily_mg(&dose(5.0, "mg", times)), Some(10.0));
        assert_eq!(
            daily_mg(&dose(5.0, "mL", json!({ "repeat": { "frequency": 1, "period": 1, "periodUnit": "d" } }))),
            None
        );
        assert_eq!(daily_mg(&json!([{ "text": "遵医嘱" }])), None);
        assert_eq!(daily_mg(&json!("garbage")), None);
    }

    proptest::proptest! {
        /// Whatever text arrives as a knowledge base, it is read or refused, never a panic; a
        /// starter file cut anywhere is refused or reads with no more than the whole.
        #[test]
        fn any_text_is_read_or_refused(s in "\\PC{0,400}", cut in 0usize..40_000) {
            let _ = KnowledgeBase::parse(&s);
            let at = (0..=cut.min(STARTER.len())).rev().find(|i| STARTER.is_char_boundary(*i)).unwrap_or(0);
            if let Ok(kb) = KnowledgeBase::parse(&STARTER[..at]) {
                proptest::prop_assert!(kb.counts.drugs <= KnowledgeBase::starter().counts.drugs);
            }
        }

        /// Any JSON as a medication or a dosage: no panic, and a dose is never negative.
        #[test]
        fn any_json_resolves_or_not(v in proptest::arbitrary::any::<(String, f64, u32)>()) {
            let kb = KnowledgeBase::starter();
            let (text, value, freq) = v;
            let _ = kb.resolve(&json!({ "text": text, "coding": [{ "system": ATC, "code": text }] }));
            let dosage = json!([{ "timing": { "repeat": { "frequency": freq, "period": value, "periodUnit": "h" } },
                "doseAndRate": [{ "doseQuantity": { "value": value, "code": "mg" } }] }]);
            if let Some(d) = daily_mg(&dosage) {
                proptest::prop_assert!(d >= 0.0 || d.is_nan());
            }
        }
    }

    #[test]
    fn a_bad_knowledge_base_is_refused_naming_the_entry() {
        let base = "format = 1\nversion = \"t\"\ntitle = \"t\"\n";
        let bad = |extra: &str| KnowledgeBase::parse(&format!("{base}{extra}")).unwrap_err();
        let drug = "[[drug]]\nid = \"a\"\nname = \"甲\"\nsource = \"s\"\n";
        assert_eq!(bad("[[drug]]\nid = \"a\"\nname = \"甲\"\n").path, "line 4", "a drug without its source");
        assert_eq!(
            bad(&format!("{drug}[[interaction]]\nid = \"i\"\na = \"a\"\nb = \"zz\"\nseverity = \"high\"\neffect = \"e\"\nsource = \"s\"\n")).path,
            "interaction[0].b"
        );
        assert_eq!(bad(&format!("{drug}{drug}")).path, "drug[1].id", "an id twice");
        assert_eq!(bad("[[class]]\nid = \"c\"\nname = \"类\"\nduplicate = \"high\"\n").path, "class[0].source");
        assert_eq!(
            bad(&format!(
                "{drug}[[age]]\nid = \"g\"\ndrug = \"a\"\nseverity = \"low\"\neffect = \"e\"\nsource = \"s\"\n"
            ))
            .path,
            "age[0]"
        );
        assert!(bad(&format!("{drug}colour = \"red\"\n")).message.contains("unknown field"));
        assert_eq!(KnowledgeBase::parse("format = 2\nversion = \"t\"\ntitle = \"t\"\n").unwrap_err().path, "format");
        assert!(KnowledgeBase::parse(base).is_ok(), "an empty knowledge base reads");
    }
}
