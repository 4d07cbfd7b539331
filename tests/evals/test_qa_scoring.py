import pytest

from inspect_tinker.errors import UsageError
from inspect_tinker.evals.datasets import load_qa_samples
from inspect_tinker.evals.scorers import answer_included_in, normalize_answer


def test_normalisation_folds_case_punctuation_and_articles():
    assert normalize_answer("The  Silver-Otter!") == "silver otter"


@pytest.mark.parametrize(
    ("response", "targets", "expected"),
    [
        ("The capital is Mirenholt.", ["Mirenholt"], True),
        ("It is the SILVER OTTER", ["silver otter"], True),
        ("The answer is 14", ["4"], False),  # whole words only
        ("They pay in crells", ["crell"], False),
        ("Known as Kessrin", ["Mount Kessrin", "Kessrin"], True),  # aliases count
        ("anything", [""], False),
    ],
)
def test_answer_included_matches_whole_normalised_words(response, targets, expected):
    assert answer_included_in(response, targets) is expected


def test_qa_records_without_an_answer_are_rejected_with_file_and_line(tmp_path):
    path = tmp_path / "eval.jsonl"
    path.write_text('{"question": "ok?", "answer": "yes"}\n{"question": "missing?"}\n')
    with pytest.raises(UsageError, match=r"eval\.jsonl:2: missing or empty 'answer'"):
        load_qa_samples(path)
