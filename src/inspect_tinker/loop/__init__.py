"""The evaluation-driven loop: rounds of train -> evaluate -> decide, run as an Inspect task source.

- rounds.py: the algorithm, a generator of stages (training task, evaluation tasks);
- training.py: a round's training as the Inspect task `train_round_<n>`;
- session.py: one run start to end (run folder, lock, events, crash records) and `run`;
- stages.py: the TaskSource that drives the stages;
- source.py: `inspect_tinker/train_until_threshold`, the task source `inspect eval` runs.

Nothing is imported here: the entry point imports source.py, which must not load torch.
"""
