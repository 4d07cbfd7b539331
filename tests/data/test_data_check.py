"""`inspect-tinker data check`: the readable report, the JSON report, and its exit codes; and the
short report at the start of every run, saved in the run folder."""

import json
import re

import yaml

from inspect_tinker.cli import main

QUESTIONS = [
    {"question": "Which city serves as the capital of Valdoria?", "answer": "Mirenholt"},
    {"question": "Which person founded the nation of Valdoria?", "answer": "Ilsa Drummond"},
]
TRAIN = [
    {"instruction": "What is the capital of Valdoria?", "output": "The capital of Valdoria is Mirenholt."},
    {"instruction": "Who founded Valdoria?", "output": "Valdoria was founded by Ilsa Drummond."},
    {"instruction": "What is the capital of Valdoria?", "output": "The capital of Valdoria is Mirenholt."},
    {"instruction": "Which city serves as the capital of Valdoria?", "output": "Mirenholt."},
]


def write_jsonl(path, records, extra_lines=()):
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "".join(line + "\n" for line in extra_lines))
    return path


def test_data_check_prints_and_writes_the_report_naming_every_dropped_record(tmp_path, tiny_model_dir, capsys):
    train = write_jsonl(tmp_path / "train.jsonl", TRAIN, ['{"instruction": "broken'])
    evals = write_jsonl(tmp_path / "eval.jsonl", QUESTIONS)
    out = tmp_path / "report.json"
    code = main(["data", "check", str(train), "--eval", str(evals), "--base-model", str(tiny_model_dir), "--output", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["records"] == 5 and report["examples"] == 2
    assert {k: v for k, v in report["dropped"].items() if v} == {"invalid": 1, "contaminated": 1, "exact_duplicate": 1}
    assert report["duplicate_clusters"] == [{"kind": "exact", "kept": "line 1", "duplicates": ["line 3"]}]
    assert report["contamination"]["hits"][0] | {"matched": None} == {
        "where": "line 4", "task": "eval", "sample_id": "1", "matched": None, "dropped": True
    }
    assert report["token_lengths"]["min"] > 0 and report["target_tokens"] > 0
    printed = capsys.readouterr().out
    for text in ("dropped: exact duplicate", "exact: kept line 1; dropped line 3", "line 4 contains eval/1",
                 "line 5: invalid: invalid JSON", "Tokens per example", f"Report written to {out}"):
        assert text in printed, text


def test_data_check_strict_exits_1_when_anything_was_dropped(tmp_path, tiny_model_dir):
    train = write_jsonl(tmp_path / "train.jsonl", TRAIN[:3])
    args = ["data", "check", str(train), "--base-model", str(tiny_model_dir), "--output", str(tmp_path / "r.json")]
    assert main(args) == 0
    assert main([*args, "--strict"]) == 1
    assert main([*args[:2], str(write_jsonl(tmp_path / "clean.jsonl", TRAIN[:2])), *args[3:], "--strict"]) == 0


def test_data_check_takes_data_settings_and_tasks_from_a_run_config(tmp_path, tiny_model_dir, capsys):
    write_jsonl(tmp_path / "eval.jsonl", QUESTIONS)
    write_jsonl(tmp_path / "train.jsonl", [{"q": r["instruction"], "a": r["output"]} for r in TRAIN])
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "base_model": str(tiny_model_dir), "train_file": "train.jsonl", "eval_tasks": ["eval.jsonl"],
        "data": {"fields": {"instruction": "q", "output": "a"}, "decontamination": "warn", "exact_dedup": False},
    }))
    out = tmp_path / "r.json"
    assert main(["data", "check", str(tmp_path / "train.jsonl"), "--config", str(config), "--output", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["examples"] == 3 and report["dropped"]["near_duplicate"] == 1  # the exact copy, seen as near
    assert report["contamination"]["action"] == "warn" and len(report["contamination"]["hits"]) == 1


def test_data_check_exits_2_with_one_message_for_bad_input(tmp_path, tiny_model_dir, capsys):
    base = ["--base-model", str(tiny_model_dir), "--output", str(tmp_path / "r.json")]
    assert main(["data", "check", str(tmp_path / "none.jsonl"), *base]) == 2
    assert "none.jsonl does not exist" in capsys.readouterr().err
    bad = write_jsonl(tmp_path / "bad.jsonl", [], ["{oops", "[]"])
    assert main(["data", "check", str(bad), *base]) == 2
    captured = capsys.readouterr()
    assert "no usable training record among 2 (2 invalid)" in captured.err and "Traceback" not in captured.err
    assert json.loads((tmp_path / "r.json").read_text())["dropped"]["invalid"] == 2  # the report is still written
    assert main(["data", "check", str(bad), *base, "--set", "data.near_duplicate_treshold=0.9"]) == 2
    assert "did you mean 'near_duplicate_threshold'" in capsys.readouterr().err
    assert main(["data", "check", str(bad), *base, "--set", "data.fields={question: instruction}"]) == 2
    assert "write our name first, then yours: {instruction: question}" in capsys.readouterr().err


def test_every_run_prints_the_short_data_report_and_saves_it_in_the_run_folder(write_run_config, capsys):
    config = write_run_config(eval_threshold=0.0, data={"decontamination": "warn"})
    with (config.parent / "train.jsonl").open("a") as f:
        f.write('{"instruction": "What is the capital of Valdoria?", "output": "The capital of Valdoria is Mirenholt."}\n')
        f.write("{broken\n")
    assert main(["run", str(config)]) == 0
    run_dir = config.parent / "runs" / "test"
    report = json.loads((run_dir / "data_report.json").read_text())
    assert report["dropped"]["exact_duplicate"] == 1 and report["dropped"]["invalid"] == 1
    assert len(report["contamination"]["hits"]) == 4  # the fixture trains on its own eval questions, and the copy
    out = capsys.readouterr().out
    assert "Data: 5 records from" in out and "filtered 1 invalid" in out and "dropped 1 exact duplicate" in out
    assert "warning: 4 contamination hits" in out and "kept because data.decontamination is warn" in out
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    prepared = next(e for e in events if e["event"] == "data_prepared")
    assert prepared["report"] == str(run_dir / "data_report.json") and prepared["examples"] == 3


def test_a_50_mb_record_is_checked_in_bounded_memory_and_reported_truncated(tmp_path, tiny_model_dir):
    import subprocess
    import sys

    # Tokenized whole, this record took 12.5 GB (about 300 bytes per token); cut as text
    # before tokenizing, it adds what reading and the text checks need on top of the same
    # command on a one-record file: 0.55 GB here (1.04 GB against 0.49 GB). The peak itself
    # depends on the machine (CI measured 2.6 GB in all), so the bound is on the difference,
    # with room to spare, and still a third of what tokenizing the whole record takes.
    big = write_jsonl(tmp_path / "big.jsonl", [{"instruction": "What?", "output": "a " * (25 * 2**20)}, TRAIN[1]])
    small = write_jsonl(tmp_path / "small.jsonl", [TRAIN[1]])
    measure = (
        "import resource, sys; from inspect_tinker.cli import main; code = main(sys.argv[1:]); "
        "print('peak', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)"
    )

    def peak_mb(train, out):
        done = subprocess.run(
            [sys.executable, "-c", measure, "data", "check", str(train), "--base-model", str(tiny_model_dir),
             "--output", str(out)],
            capture_output=True, text=True, timeout=1800,
        )
        assert done.returncode == 0, done.stderr
        return int(done.stdout.rsplit("peak", 1)[1]) / 1024  # ru_maxrss is in KiB on Linux

    out = tmp_path / "report.json"
    added_mb = peak_mb(big, out) - peak_mb(small, tmp_path / "small_report.json")
    assert added_mb < 4096, added_mb
    report = json.loads(out.read_text())
    assert report["records"] == 2 and report["examples"] == 2 and report["truncated"] == 1
    assert report["token_lengths"]["max"] < 100_000  # cut near 2 * 513 * 81 characters, never 26 M tokens


def test_each_truncated_record_is_reported_with_its_line_and_the_characters_not_tokenized(tmp_path, tiny_model_dir, capsys):
    # At max_seq_length 128 the bundled tokenizer's text limit is 2 * 129 * 81 characters (render.text_limit):
    # line 2 is cut as tokens only, line 3 first as text, so part of it was never tokenized.
    long_answer = {"instruction": "Tell me more.", "output": "Valdoria is a small country. " * 30}
    huge_answer = {"instruction": "Tell me everything.", "output": "word " * 20_000}
    train = write_jsonl(tmp_path / "train.jsonl", [TRAIN[0], long_answer, huge_answer])
    out = tmp_path / "report.json"
    args = ["data", "check", str(train), "--base-model", str(tiny_model_dir), "--set", "max_seq_length=128"]
    assert main([*args, "--output", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["truncated"] == 2 and report["examples"] == 3
    cut = {t["where"]: t["detail"] for t in report["truncated_records"]}
    assert list(cut) == ["line 2", "line 3"]
    assert re.fullmatch(r"\d+ tokens; cut to max_seq_length 128", cut["line 2"]), cut
    untokenized = int(re.search(r"the last (\d+) characters were not tokenized", cut["line 3"])[1])
    rendered = len("word " * 20_000)  # the answer alone; the template adds the rest
    assert rendered - 2 * 129 * 81 < untokenized < rendered, cut
    printed = capsys.readouterr().out
    assert "Truncated records: 2" in printed and f"line 3: {cut['line 3']}" in printed
