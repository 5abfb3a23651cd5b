//! Linkage accuracy on the synthetic district (Chinese names, citizen IDs, households):
//! `cargo run --release -p wuqing-health --example synthetic -- [RESIDENTS=100000] [QUERIES=10000]`.
//! The index holds RESIDENTS; QUERIES of them come again as another institution registered them
//! (`synth::duplicate`), and QUERIES strangers (another district's residents, namesakes likely)
//! come as new people. Each query is linked to its best candidate at match probability ≥ 0.9
//! (review from 0.1); prints precision, recall and F1 of the links, the strangers wrongly linked,
//! and the review queue.

use health::linkage::{self, Decision, Index, Model, Prepared, Thresholds};
use health::synth;

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (n, q) = (args.first().copied().unwrap_or(100_000), args.get(1).copied().unwrap_or(10_000));
    let t0 = std::time::Instant::now();
    let residents = synth::residents(n, 1, 2026);
    let strangers = synth::residents(q, 2, 2026);
    let mut index = Index::new();
    for r in &residents {
        index.insert(&r.person());
    }
    let built = t0.elapsed();
    // Queries: every (n / q)-th resident again, then the strangers; the truth is the resident's
    // position, or none.
    let step = (n / q.max(1)).max(1);
    let mut queries: Vec<(linkage::Person, Option<usize>)> =
        (0..n).step_by(step).take(q).map(|i| (synth::duplicate(&residents[i], i as u64), Some(i))).collect();
    queries.extend(strangers.iter().map(|s| (synth::duplicate(s, 7), None)));
    let t1 = std::time::Instant::now();
    let mut scored = vec![];
    for (k, (p, _)) in queries.iter().enumerate() {
        let prep = Prepared::new(p);
        for j in index.candidates(&prep) {
            if let Some(r) = index.get(j) {
                scored.push((k, j, linkage::compare(&prep, r)));
            }
        }
    }
    let model = Model::estimate(&linkage::tally(scored.iter().map(|(_, _, l)| *l)), 100);
    let t = Thresholds::default();
    if std::env::args().any(|a| a == "--weights") {
        for (f, name) in linkage::FIELDS.iter().enumerate() {
            let w: Vec<String> = (0..3).map(|l| format!("{:+.1}", (model.m[f][l] / model.u[f][l]).log2())).collect();
            println!("  {name:<14} weights disagree/partial/agree {}", w.join(" / "));
        }
        println!("  share of matches among candidates {:.4}", model.p);
    }
    // Each query's best candidate decides.
    let mut best: Vec<Option<(usize, f64)>> = vec![None; queries.len()];
    let prepared: Vec<Prepared> = queries.iter().map(|(p, _)| Prepared::new(p)).collect();
    for (k, j, l) in &scored {
        let Some(r) = index.get(*j) else { continue };
        let (_, pr) = linkage::decide(&model, &t, &prepared[*k], r, l, index.rarity(&prepared[*k], l));
        if best[*k].is_none_or(|(_, b)| pr > b) {
            best[*k] = Some((*j, pr));
        }
    }
    let linking = t1.elapsed();
    let (mut tp, mut fp, mut review, mut strangers_linked) = (0, 0, 0, 0);
    let mut blocked = 0;
    let show_misses = std::env::args().any(|a| a == "--misses");
    let mut shown = 0;
    for (k, (_, truth)) in queries.iter().enumerate() {
        if let Some(i) = truth {
            if scored.iter().any(|(kk, j, _)| *kk == k && j == i) {
                blocked += 1;
            }
        }
        let Some((j, pr)) = best[k] else { continue };
        match t.decide(pr) {
            Decision::Match if Some(j) == *truth => tp += 1,
            Decision::Match => {
                fp += 1;
                if truth.is_none() {
                    strangers_linked += 1;
                }
            }
            Decision::Possible => review += 1,
            Decision::NoMatch => {}
        }
        if show_misses && truth.is_some() && t.decide(pr) != Decision::Match && shown < 8 {
            shown += 1;
            let i = truth.unwrap_or_default();
            let right = scored.iter().find(|(kk, j, _)| *kk == k && *j == i).map(|(_, _, l)| *l);
            println!(
                "not linked (p {pr:.3}, right one's levels {right:?}, p {:.3}):\n  {:?}\n  {:?}",
                right.map_or(0.0, |l| model.probability(&l)),
                queries[k].0,
                residents[i].person()
            );
        }
    }
    let returning = queries.iter().filter(|(_, t)| t.is_some()).count();
    let (precision, recall) = (tp as f64 / (tp + fp).max(1) as f64, tp as f64 / returning.max(1) as f64);
    let f1 = 2.0 * precision * recall / (precision + recall).max(f64::MIN_POSITIVE);
    println!(
        "index: {n} residents built in {:.2} s; queries: {returning} returning, {} strangers",
        built.as_secs_f64(),
        strangers.len()
    );
    println!(
        "blocking: {} candidate pairs ({:.1} per query), the right resident among them for {blocked} of {returning}",
        scored.len(),
        scored.len() as f64 / queries.len() as f64
    );
    println!("links: {} right, {fp} wrong ({strangers_linked} of them strangers); review queue {review}", tp);
    println!("precision {precision:.4}  recall {recall:.4}  F1 {f1:.4}  ({:.2} s to link)", linking.as_secs_f64());
}
