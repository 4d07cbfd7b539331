"""The peer side of bench/rl.py, run by the peer environment's Python (tinker-cookbook 0.6.1).

Runs tinker-cookbook's own `recipes/rl_loop.py` (`main`, unchanged) against the same local
server. What is patched is only where rl_loop gets its task from:
- its dataset (GSM8K from the hub) becomes the prompts inspect-tinker's loop chose, step by
  step in the same order (rl_loop takes batch i as rows i*batch .. (i+1)*batch-1);
- its prompt (a few-shot GSM8K conversation, rendered) becomes the prompt tokens inspect-tinker's
  provider rendered for the same question, read from our rollout logs: both loops sample from
  the same tokens;
- its reward function (a boxed math answer graded) becomes bench/rl_reward_task.py's `reward`, on
  the text rl_loop's renderer parses from the sampled tokens;
- the renderer is `qwen3_instruct`, the ChatML turn format of SmolLM2's tokenizer (the tiny
  model has it too), whose stop sequence is the same end-of-turn token as ours.

    python _tinker_cookbook_rl_peer.py JOB.json RESULT.json

The cookbook is imported inside the functions, as in bench/_tinker_cookbook_peer.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
from pathlib import Path


def run(job: dict, log_path: Path) -> list[dict]:
    """rl_loop.main on our task; per step, its wall time and mean reward from its metrics log."""
    import datasets
    import tinker
    from tinker_cookbook.recipes import rl_loop

    spec = importlib.util.spec_from_file_location("rl_task", job["task_file"])
    task = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(task)
    questions = [q for step in job["questions_per_step"] for q in step]
    prompts = job["prompt_tokens"]  # question -> the tokens our provider sampled it from

    rl_loop.datasets.load_dataset = lambda *args, **kwargs: datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"question": questions, "answer": [""] * len(questions)})})
    rl_loop.get_reward = lambda response, answer: task.reward(response)
    rl_loop.model_info.get_recommended_renderer_name = lambda name: job["renderer"]
    get_renderer = rl_loop.renderers.get_renderer

    def renderer_with_our_prompts(name, tokenizer, *args, **kwargs):
        renderer = get_renderer(name, tokenizer, *args, **kwargs)

        def build_generation_prompt(conversation, *rest, **more):
            # rl_loop's last message is the question followed by its boxed-answer instruction.
            content = conversation[-1]["content"]
            question = next(q for q in prompts if content.startswith(q))
            return tinker.ModelInput.from_ints(prompts[question])

        renderer.build_generation_prompt = build_generation_prompt
        return renderer

    rl_loop.renderers.get_renderer = renderer_with_our_prompts
    rl_loop.main(rl_loop.Config(
        base_url=job["base_url"], log_path=str(log_path), model_name=job["model_folder"],
        batch_size=job["prompts_per_step"], group_size=job["group_size"], learning_rate=job["learning_rate"],
        lora_rank=job["lora_rank"], save_every=0, max_tokens=job["max_tokens"], loss_fn="importance_sampling",
        max_steps=len(job["questions_per_step"]),
    ))
    metrics = [json.loads(line) for line in (log_path / "metrics.jsonl").read_text().splitlines()]
    return [{"seconds": m["time/total"], "mean_reward": m["reward/total"]} for m in metrics if "time/total" in m]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The tinker-cookbook side of bench/rl.py.")
    parser.add_argument("job", type=Path, help="the job bench/rl.py wrote")
    parser.add_argument("result", type=Path, help="where to write each step's seconds and mean reward")
    args = parser.parse_args()
    job = json.loads(args.job.read_text())
    steps = run(job, Path(tempfile.mkdtemp(prefix="rl-loop-")))
    args.result.write_text(json.dumps({"steps": steps}, indent=2))
