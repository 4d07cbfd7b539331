"""The evaluation-driven loop: rounds of train -> evaluate -> decide, run as an Inspect task source.

- rounds.py: the algorithm, a generator of stages (training task, evaluation tasks);
- training.py: a round's training as the Inspect task `train_round_<n>`;
- eval_tasks.py: the configuration's `eval_tasks` (and the regression guard) as ready Inspect tasks;
- evaluation.py: recording one evaluation, and `inspect-tinker eval` (evaluate without training);
- summary.py: the outcome of a run as plain data (summary.json);
- session.py: one run start to end (run folder, lock, events, crash records) and `run`;
- graceful_stop.py: Ctrl-C and SIGTERM stop a run at its next safe point;
- stages.py: the TaskSource that drives the stages;
- source.py: `inspect_tinker/train_until_threshold`, the task source `inspect eval` runs;
- tune.py: `inspect-tinker tune`, a hyperparameter search whose trials are short runs.

Nothing is imported here: the entry point imports source.py, which must not load torch.
"""
