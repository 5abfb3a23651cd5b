//! The master patient index over FHIR Patients: what `Patient/$match` answers (R4 Patient
//! operation `match`): the candidates for an incoming Patient, each with a score and a match
//! grade (`certain`, `probable`, `possible`), from [`crate::linkage`].
//!
//! The model's m and u are estimated by EM from the pairs it will classify, so no labelled pairs
//! are needed: a batch of incoming registrations (an institution's import) against the index
//! (`estimate_with`), or the index against itself once it holds several registrations of the same
//! people (`estimate`). EM learns what a match looks like only from pairs among which matches
//! exist: an index of distinct people alone teaches it nothing.

use crate::generate::CITIZEN_ID_SYSTEM;
use crate::linkage::{self, Decision, Index, Model, Person, Prepared, Sex, Thresholds};
use serde_json::{Value, json};

/// What linkage compares, read from a FHIR Patient: the official name (or the first), the
/// citizen ID among the identifiers, the first phone, the home address (or the first).
pub fn person_from_patient(p: &Value) -> Person {
    let names = p["name"].as_array().map(Vec::as_slice).unwrap_or_default();
    let name = names.iter().find(|n| n["use"] == "official").or(names.first());
    let family = name.and_then(|n| n["family"].as_str()).unwrap_or_default().to_string();
    let given_parts: Vec<&str> = name
        .and_then(|n| n["given"].as_array())
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // Han given names are written together (芳, 晓梅); Latin ones with spaces.
    let han = given_parts.iter().any(|g| !g.is_ascii());
    let given = given_parts.join(if han { "" } else { " " });
    let sex = match p["gender"].as_str() {
        Some("male") => Some(Sex::Male),
        Some("female") => Some(Sex::Female),
        Some("other") => Some(Sex::Other),
        _ => None,
    };
    let birth_date = p["birthDate"].as_str().and_then(|d| {
        let mut it = d.splitn(3, '-');
        let (y, m, d) = (it.next()?.parse().ok()?, it.next()?.parse().ok()?, it.next()?.parse().ok()?);
        Some((y, m, d))
    });
    let ids = p["identifier"].as_array().map(Vec::as_slice).unwrap_or_default();
    let id_number = ids
        .iter()
        .find(|i| i["system"] == CITIZEN_ID_SYSTEM)
        .and_then(|i| i["value"].as_str())
        .unwrap_or_default()
        .to_string();
    let telecom = p["telecom"].as_array().map(Vec::as_slice).unwrap_or_default();
    let phone = telecom.iter().find(|t| t["system"] == "phone").and_then(|t| t["value"].as_str()).unwrap_or_default();
    let addresses = p["address"].as_array().map(Vec::as_slice).unwrap_or_default();
    let addr = addresses.iter().find(|a| a["use"] == "home").or(addresses.first());
    let field = |k: &str| addr.and_then(|a| a[k].as_str()).unwrap_or_default().to_string();
    let line: Vec<&str> = addr
        .and_then(|a| a["line"].as_array())
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // The sub-district or town, where the text names one of the district's.
    let text = field("text");
    let locality =
        crate::synth::LOCALITIES.iter().find(|l| text.contains(*l)).map(|l| l.to_string()).unwrap_or_default();
    Person {
        family_name: family,
        given_name: given,
        sex,
        birth_date,
        id_number,
        phone: phone.to_string(),
        address: line.join(""),
        locality,
        postcode: field("postalCode"),
        region: field("state"),
        ..Person::default()
    }
}

/// How sure a candidate is (the `match-grade` extension of R4's Patient `$match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grade {
    Certain,
    Probable,
    Possible,
}

impl Grade {
    pub fn code(self) -> &'static str {
        match self {
            Grade::Certain => "certain",
            Grade::Probable => "probable",
            Grade::Possible => "possible",
        }
    }
}

/// A candidate for an incoming Patient.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    /// The match probability, 0 to 1 (`search.score`).
    pub score: f64,
    pub grade: Grade,
}

/// Probability at or above which a linked candidate is `certain` rather than `probable`.
const CERTAIN: f64 = 0.99;

/// Patients indexed for matching, by their resource ids.
pub struct Mpi {
    index: Index,
    ids: Vec<String>,
    model: Model,
    pub thresholds: Thresholds,
}

impl Default for Mpi {
    fn default() -> Self {
        Self { index: Index::new(), ids: vec![], model: Model::default(), thresholds: Thresholds::default() }
    }
}

impl Mpi {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Adds a Patient under its resource id.
    pub fn add(&mut self, id: &str, patient: &Value) {
        self.index.insert(&person_from_patient(patient));
        self.ids.push(id.to_string());
    }

    /// Estimates the model from up to `sample` records of the index against their candidates.
    pub fn estimate(&mut self, sample: usize) {
        let step = (self.index.len() / sample.max(1)).max(1);
        let mut levels = vec![];
        for i in (0..self.index.len()).step_by(step).take(sample) {
            let Some(q) = self.index.get(i) else { continue };
            for j in self.index.candidates(q) {
                if j != i {
                    if let Some(r) = self.index.get(j) {
                        levels.push(linkage::compare(q, r));
                    }
                }
            }
        }
        self.model = Model::estimate(&linkage::tally(levels), 100);
    }

    /// Estimates the model from a batch of incoming Patients against their candidates in the index.
    pub fn estimate_with(&mut self, incoming: &[Value]) {
        let mut levels = vec![];
        for p in incoming {
            let q = Prepared::new(&person_from_patient(p));
            for j in self.index.candidates(&q) {
                if let Some(r) = self.index.get(j) {
                    levels.push(linkage::compare(&q, r));
                }
            }
        }
        self.model = Model::estimate(&linkage::tally(levels), 100);
    }

    /// The candidates for `patient` that are at least possible matches, best first, at most
    /// `count`; with `only_certain`, only certain ones (R4 `$match` `onlyCertainMatches`).
    pub fn matches(&self, patient: &Value, count: usize, only_certain: bool) -> Vec<Candidate> {
        let q = Prepared::new(&person_from_patient(patient));
        let mut out: Vec<Candidate> = self
            .index
            .candidates(&q)
            .into_iter()
            .filter_map(|j| {
                let r = self.index.get(j)?;
                let levels = linkage::compare(&q, r);
                let (decision, score) =
                    linkage::decide(&self.model, &self.thresholds, &q, r, &levels, self.index.rarity(&q, &levels));
                let grade = match decision {
                    Decision::Match if score >= CERTAIN => Grade::Certain,
                    Decision::Match => Grade::Probable,
                    Decision::Possible => Grade::Possible,
                    Decision::NoMatch => return None,
                };
                Some(Candidate { id: self.ids.get(j)?.clone(), score, grade })
            })
            .filter(|c| !only_certain || c.grade == Grade::Certain)
            .collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        out.truncate(count);
        out
    }
}

/// The `$match` answer: a searchset Bundle of the candidates, each entry with its score and
/// grade; `resource` fetches a candidate's Patient.
pub fn match_bundle(candidates: &[Candidate], resource: impl Fn(&str) -> Option<Value>) -> Value {
    let entries: Vec<Value> = candidates
        .iter()
        .filter_map(|c| {
            Some(json!({
                "fullUrl": format!("Patient/{}", c.id),
                "resource": resource(&c.id)?,
                "search": {
                    "mode": "match",
                    "score": (c.score * 1000.0).round() / 1000.0,
                    "extension": [{
                        "url": "http://hl7.org/fhir/StructureDefinition/match-grade",
                        "valueCode": c.grade.code()
                    }]
                }
            }))
        })
        .collect();
    json!({ "resourceType": "Bundle", "type": "searchset", "total": entries.len(), "entry": entries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth;
    use std::collections::HashMap;

    /// A Patient as another desk registered it (from a synthetic duplicate).
    fn patient_of(p: &Person) -> Value {
        let mut v =
            json!({ "resourceType": "Patient", "name": [{ "family": p.family_name, "given": [p.given_name] }] });
        if let Some(s) = p.sex {
            v["gender"] = json!(if s == Sex::Male { "male" } else { "female" });
        }
        if let Some((y, m, d)) = p.birth_date {
            v["birthDate"] = json!(format!("{y:04}-{m:02}-{d:02}"));
        }
        if !p.id_number.is_empty() {
            v["identifier"] = json!([{ "system": CITIZEN_ID_SYSTEM, "value": p.id_number }]);
        }
        if !p.phone.is_empty() {
            v["telecom"] = json!([{ "system": "phone", "value": p.phone }]);
        }
        if !p.address.is_empty() {
            v["address"] = json!([{ "text": format!("{}{}", p.locality, p.address), "line": [p.address] }]);
        }
        v
    }

    #[test]
    fn an_index_holding_several_registrations_of_people_learns_from_itself() {
        let residents = synth::residents(2000, 12, 2026);
        let mut mpi = Mpi::new();
        for (i, r) in residents.iter().enumerate() {
            mpi.add(&format!("a{i}"), &patient_of(&r.person()));
        }
        // A second hospital registered every fourth resident too.
        for (i, r) in residents.iter().enumerate().step_by(4) {
            mpi.add(&format!("b{i}"), &patient_of(&synth::duplicate(r, i as u64)));
        }
        mpi.estimate(2500);
        let mut right = 0;
        let mut asked = 0;
        for (i, r) in residents.iter().enumerate().step_by(4) {
            let found = mpi.matches(&patient_of(&synth::duplicate(r, i as u64)), 3, false);
            asked += 1;
            // The query is the second hospital's record itself: both registrations come first.
            if found.iter().take(2).any(|c| c.id == format!("a{i}")) {
                right += 1;
            }
        }
        assert!(right * 100 >= asked * 95, "{right} of {asked}");
    }

    #[test]
    fn a_generated_patient_reads_back_as_the_resident() {
        let mut patients = vec![];
        crate::generate::district(50, 4, 2026, |t, v| {
            if t == "Patient" {
                patients.push(v);
            }
        });
        let residents = synth::residents(50, 4, 2026);
        for (p, r) in patients.iter().zip(&residents) {
            let mut want = r.person();
            want.region = "天津市".into();
            assert_eq!(person_from_patient(p), want);
        }
        assert_eq!(person_from_patient(&json!({})), Person::default(), "an empty Patient is an empty person");
        assert_eq!(person_from_patient(&json!({ "name": "x", "birthDate": 7, "gender": [] })), Person::default());
    }

    #[test]
    fn match_finds_returning_residents_and_grades_them() {
        let mut mpi = Mpi::new();
        let mut by_id: HashMap<String, Value> = HashMap::new();
        crate::generate::district(3000, 8, 2026, |t, v| {
            if t == "Patient" {
                let id = v["id"].as_str().unwrap_or_default().to_string();
                mpi.add(&id, &v);
                by_id.insert(id, v);
            }
        });
        let residents = synth::residents(3000, 8, 2026);
        // Another institution's registrations of every tenth resident come as one batch.
        let batch: Vec<(usize, Value)> = residents
            .iter()
            .enumerate()
            .step_by(10)
            .map(|(i, r)| (i, patient_of(&synth::duplicate(r, i as u64))))
            .collect();
        mpi.estimate_with(&batch.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>());
        let (mut first, mut graded) = (0, HashMap::<&str, usize>::new());
        for (i, q) in &batch {
            let (i, q) = (*i, q.clone());
            let found = mpi.matches(&q, 3, false);
            if found.first().is_some_and(|c| c.id == format!("p{:07}", i + 1)) {
                first += 1;
                *graded.entry(found[0].grade.code()).or_default() += 1;
            }
            assert!(found.windows(2).all(|w| w[0].score >= w[1].score), "best first");
            assert!(mpi.matches(&q, 3, true).iter().all(|c| c.grade == Grade::Certain));
        }
        assert!(first >= 290, "the resident came first for {first} of 300 ({graded:?})");
        assert!(graded["certain"] > 200, "{graded:?}");
        // Someone who is not there.
        let stranger = json!({ "resourceType": "Patient", "name": [{ "family": "欧阳", "given": ["无名"] }], "birthDate": "1901-01-01" });
        assert!(mpi.matches(&stranger, 3, false).is_empty());
        // The Bundle.
        let found = mpi.matches(&by_id["p0000001"], 2, false);
        let b = match_bundle(&found, |id| by_id.get(id).cloned());
        assert_eq!(b["type"], "searchset");
        assert_eq!(b["entry"][0]["fullUrl"], "Patient/p0000001");
        assert_eq!(b["entry"][0]["search"]["extension"][0]["valueCode"], "certain");
        assert!(crate::fhir::validate::validate(&b["entry"][0]["resource"], Some("Patient")).is_empty());
    }
}

/// The links between registrations that the index keeps (automatic and human), as a sequence of
/// events, so that each is audited and can be taken back: the same person is the set of
/// registrations joined by links; "separated" records two registrations a human judged to be two
/// people, which no later link may join, directly or through others.
pub mod links {
    use std::collections::{BTreeSet, HashMap, VecDeque};

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Event {
        Link { a: String, b: String },
        Unlink { a: String, b: String },
        Separate { a: String, b: String },
        Unseparate { a: String, b: String },
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
    pub enum LinkError {
        #[error("a registration cannot be linked to itself")]
        SelfLink,
        #[error("the two are already the same person")]
        AlreadyLinked,
        #[error("the link would join registrations a reviewer separated")]
        Separated,
        #[error("there is no such link or separation to take back")]
        NotThere,
    }

    fn pair(a: &str, b: &str) -> (String, String) {
        if a <= b { (a.to_string(), b.to_string()) } else { (b.to_string(), a.to_string()) }
    }

    /// The links in force.
    #[derive(Debug, Clone, Default)]
    pub struct Links {
        edges: BTreeSet<(String, String)>,
        separated: BTreeSet<(String, String)>,
        adjacent: HashMap<String, BTreeSet<String>>,
    }

    impl Links {
        /// Replays events in order; the first refused names its position.
        pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Result<Links, (usize, LinkError)> {
            let mut l = Links::default();
            for (i, e) in events.into_iter().enumerate() {
                l.apply(e).map_err(|err| (i, err))?;
            }
            Ok(l)
        }

        /// Applies one event, or refuses it and changes nothing.
        pub fn apply(&mut self, e: &Event) -> Result<(), LinkError> {
            match e {
                Event::Link { a, b } => {
                    if a == b {
                        return Err(LinkError::SelfLink);
                    }
                    let (ca, cb) = (self.person(a), self.person(b));
                    if ca.contains(b) {
                        return Err(LinkError::AlreadyLinked);
                    }
                    if self
                        .separated
                        .iter()
                        .any(|(x, y)| (ca.contains(x) && cb.contains(y)) || (ca.contains(y) && cb.contains(x)))
                    {
                        return Err(LinkError::Separated);
                    }
                    self.edges.insert(pair(a, b));
                    self.adjacent.entry(a.clone()).or_default().insert(b.clone());
                    self.adjacent.entry(b.clone()).or_default().insert(a.clone());
                    Ok(())
                }
                Event::Unlink { a, b } => {
                    if !self.edges.remove(&pair(a, b)) {
                        return Err(LinkError::NotThere);
                    }
                    for (x, y) in [(a, b), (b, a)] {
                        if let Some(n) = self.adjacent.get_mut(x) {
                            n.remove(y);
                        }
                    }
                    Ok(())
                }
                Event::Separate { a, b } => {
                    if a == b {
                        return Err(LinkError::SelfLink);
                    }
                    if self.person(a).contains(b) {
                        return Err(LinkError::AlreadyLinked);
                    }
                    self.separated.insert(pair(a, b));
                    Ok(())
                }
                Event::Unseparate { a, b } => {
                    if self.separated.remove(&pair(a, b)) {
                        Ok(())
                    } else {
                        Err(LinkError::NotThere)
                    }
                }
            }
        }

        /// The registrations of the person `id` belongs to (itself included).
        pub fn person(&self, id: &str) -> BTreeSet<String> {
            let mut seen = BTreeSet::from([id.to_string()]);
            let mut todo = VecDeque::from([id.to_string()]);
            while let Some(x) = todo.pop_front() {
                for y in self.adjacent.get(&x).into_iter().flatten() {
                    if seen.insert(y.clone()) {
                        todo.push_back(y.clone());
                    }
                }
            }
            seen
        }

        pub fn same_person(&self, a: &str, b: &str) -> bool {
            self.person(a).contains(b)
        }

        pub fn is_separated(&self, a: &str, b: &str) -> bool {
            self.separated.contains(&pair(a, b))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn link(a: &str, b: &str) -> Event {
            Event::Link { a: a.into(), b: b.into() }
        }

        #[test]
        fn links_join_people_and_are_taken_back() {
            let events = [link("h1/1", "h2/7"), link("h2/7", "h3/2")];
            let mut l = Links::replay(&events).unwrap();
            assert!(l.same_person("h1/1", "h3/2"), "through h2/7");
            assert_eq!(l.apply(&link("h3/2", "h1/1")), Err(LinkError::AlreadyLinked));
            l.apply(&Event::Unlink { a: "h3/2".into(), b: "h2/7".into() }).unwrap();
            assert!(!l.same_person("h1/1", "h3/2") && l.same_person("h1/1", "h2/7"));
            assert_eq!(l.apply(&Event::Unlink { a: "h3/2".into(), b: "h2/7".into() }), Err(LinkError::NotThere));
            assert_eq!(l.apply(&link("x", "x")), Err(LinkError::SelfLink));
        }

        #[test]
        fn a_separation_holds_against_links_through_others() {
            let mut l = Links::default();
            l.apply(&Event::Separate { a: "a".into(), b: "b".into() }).unwrap();
            assert_eq!(l.apply(&link("a", "b")), Err(LinkError::Separated));
            l.apply(&link("a", "c")).unwrap();
            assert_eq!(l.apply(&link("c", "b")), Err(LinkError::Separated), "c is a's person");
            l.apply(&link("b", "d")).unwrap();
            assert_eq!(l.apply(&link("d", "c")), Err(LinkError::Separated), "d is b's, c is a's");
            assert_eq!(l.apply(&Event::Separate { a: "a".into(), b: "c".into() }), Err(LinkError::AlreadyLinked));
            l.apply(&Event::Unseparate { a: "b".into(), b: "a".into() }).unwrap();
            l.apply(&link("d", "c")).unwrap();
            assert!(l.same_person("a", "b"));
            // A replay stops at the first refused event and names it.
            let events = [Event::Separate { a: "x".into(), b: "y".into() }, link("x", "y")];
            assert_eq!(Links::replay(&events).unwrap_err(), (1, LinkError::Separated));
        }
    }
}
