"""The demo's evaluation questions as an Inspect task, scored by `inspect_tinker/qa_grader`.

    inspect eval tasks/demo_qa.py --model hf/<model folder>
    inspect eval tasks/demo_qa.py -T questions=confirm --model mockllm/model --limit 2

`questions` picks the demo's file: `eval` (the main gate, 12 paraphrased questions about
Valdoria), `more_facts` (the second gate) or `confirm` (the confirmation task). The files are
the packaged demo's (examples/demo/, installed as `inspect_tinker.demo`), found through the
package: the demo keeps one copy of its data, and this file works from any folder where
inspect-tinker is installed. Answers are generated as the demo run generates them
(examples/demo/config.yaml: `generation`), greedily.
"""

import yaml
from inspect_ai import Task, task, task_with
from inspect_ai.model import GenerateConfig

from inspect_tinker.demo import DEMO_CONFIG, DEMO_DIR
from inspect_tinker.evals.qa import qa

QUESTION_FILES = ("eval", "more_facts", "confirm")


@task
def demo_qa(questions: str = "eval") -> Task:
    """The demo's `questions` file (eval, more_facts or confirm) as a QA task graded by qa_grader."""
    if questions not in QUESTION_FILES:
        raise ValueError(f"questions must be one of {', '.join(QUESTION_FILES)} (got {questions!r})")
    generation = yaml.safe_load(DEMO_CONFIG.read_text())["generation"]
    # Greedy is top_k=1, as in the packaged general-knowledge task (evals/general_knowledge.py says why).
    greedy = GenerateConfig(max_tokens=generation["max_tokens"], top_k=1, seed=0)
    return task_with(qa(path=str(DEMO_DIR / f"{questions}.jsonl"), name="demo_qa"), config=greedy)
