import torch

from inspect_tinker.data.batching import batch_for_step, micro_batches
from inspect_tinker.data.tensors import IGNORE_INDEX, collate, pack
from inspect_tinker.data.render import TokenizedExample


def test_each_epoch_visits_every_example_once():
    n, batch = 10, 4
    seen = [i for step in range(5) for i in batch_for_step(n, batch, step, seed=1)]  # 20 draws = 2 epochs
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))
    assert seen[:10] != seen[10:]  # each epoch is shuffled anew


def test_data_order_depends_only_on_seed_and_step():
    assert batch_for_step(50, 8, 3, seed=7) == batch_for_step(50, 8, 3, seed=7)
    assert batch_for_step(50, 8, 3, seed=7) != batch_for_step(50, 8, 3, seed=8)


def test_collate_pads_right_and_masks_labels():
    a = TokenizedExample([1, 2, 3], [0, 1, 1])
    b = TokenizedExample([4, 5], [0, 1])
    out = collate([a, b], pad_token_id=0)
    assert out["input_ids"].tolist() == [[1, 2, 3], [4, 5, 0]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert out["labels"].tolist() == [[IGNORE_INDEX, 2, 3], [IGNORE_INDEX, 5, IGNORE_INDEX]]
    assert out["labels"].dtype == torch.long


def test_pack_fills_rows_as_long_as_the_longest_example_and_never_trains_across_a_boundary():
    long = TokenizedExample([1, 2, 3, 4], [0, 0, 1, 1])
    a = TokenizedExample([5, 6], [0, 1])
    b = TokenizedExample([7, 8], [1, 1])  # even a first token marked for loss is never a target
    c = TokenizedExample([9], [1])
    out = pack([a, long, b, c], pad_token_id=0)
    assert out["input_ids"].tolist() == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 0, 0, 0]]
    assert out["position_ids"].tolist() == [[0, 1, 2, 3], [0, 1, 0, 1], [0, 0, 1, 2]]
    ignore = IGNORE_INDEX
    assert out["labels"].tolist() == [[ignore, ignore, 3, 4], [ignore, 6, ignore, 8], [ignore] * 4]
    # Exactly the examples' own target tokens are trained on, no more.
    assert (out["labels"] != IGNORE_INDEX).sum() == sum(e.n_target_tokens for e in (long, a, b, c))


def example(n):
    return TokenizedExample(list(range(n)), [1] * n)


def test_micro_batches_group_similar_lengths_and_share_a_batch_among_processes():
    batch = [example(n) for n in (9, 2, 7, 4, 5, 3)]
    assert [[len(e.input_ids) for e in m] for m in micro_batches(batch, 2)] == [[2, 3], [4, 5], [7, 9]]
    shares = [micro_batches(batch, None, rank, 2) for rank in (0, 1)]
    assert [[len(e.input_ids) for e in m] for s in shares for m in s] == [[2, 4, 7], [3, 5, 9]]
