"""The relevance floor alone, no model: every asked question of a world failing at once (the
harshest case), what select_candidates adds from its pool, how many are right, and what a second
round adds (the stopping rule). Run: .venv/bin/python bench/selection_floor.py [--nameless]"""
import sys; sys.path.insert(0, "bench")
from selection import make_world
from inspect_tinker.policies.relevance import RelevanceFloor
from inspect_tinker.policies.retrieval import BM25Index
from inspect_tinker.policies.selection import Failure, PoolRecord, conversation_text, prompt_and_answer, select_candidates
for seed in range(5):
    w = make_world(seed, nameless="--nameless" in sys.argv)
    pool = [PoolRecord(f"pool.jsonl:{n}", [{"role": "user", "content": q}, {"role": "assistant", "content": a}])
            for n, (q, a) in enumerate(w.pool, 1) if n != w.copied_line]  # decontamination drops the copy
    fails = [Failure("facts", e["id"], e["question"]) for e in w.eval]
    idx = BM25Index([conversation_text(r.conversation) for r in pool])
    floor = RelevanceFloor([prompt_and_answer(r.conversation) for r in pool])
    added, _ = select_candidates(fails, pool, idx, floor, limit=10, round_no=1)
    right = sum(w.targets.get(int(a.where.rsplit(":", 1)[1])) == a.sample_id for a in added)
    relevant = sum(1 for f in w.hidden for _ in f.records)
    again, _ = select_candidates(fails, pool, idx, floor, limit=10, round_no=2, taken={a.where for a in added})
    print(f"seed {seed}: added {len(added)}, right {right}, relevant in pool {relevant}, round 2 adds {len(again)}")
