"""The peer side of bench/tinker_server.py, run by the peer environment's Python (tinker-cookbook 0.6.1).

Trains with tinker-cookbook's own `recipes/sl_loop.py` (`main`, unchanged) on the batches
bench/tinker_server.py wrote, then samples the same prompts through the cookbook's Inspect
model API (`InspectAPIFromTinkerSampling.generate`, what its Inspect evaluators call), all
requests in flight at once. What is patched is only where sl_loop gets its data and model
from: its dataset (the hub's no_robots) becomes our rows, and `conversation_to_datum` returns
the Datum inspect-tinker rendered for the row, so both sides send the same tokens.

    python _tinker_cookbook_peer.py JOB.json RESULT.json

The cookbook is imported inside the functions: inspect-tinker's environment, which has none,
can still show this script's usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path


def datum(tokens: list[int], weights: list[float]):
    import tinker

    return tinker.Datum(model_input=tinker.ModelInput.from_ints(tokens[:-1]),
                        loss_fn_inputs={"target_tokens": tokens[1:], "weights": weights[1:]})


def train(job: dict, log_path: Path) -> list[float]:
    """sl_loop.main on our batches; the wall time of each of its steps, from its metrics log."""
    import datasets
    from tinker_cookbook.recipes import sl_loop

    rows = [{"messages": [{"role": "user", "content": str(i)}]} for i in range(len(job["examples"]))]
    # sl_loop shuffles its dataset (seed 0); place the rows so that the shuffle puts them back in
    # our order, and its batches are ours.
    order = datasets.Dataset.from_dict({"i": list(range(len(rows)))}).shuffle(seed=0)["i"]
    placed = [None] * len(rows)
    for position, original in enumerate(order):
        placed[original] = rows[position]
    by_row = {str(i): datum(e["tokens"], e["weights"]) for i, e in enumerate(job["examples"])}
    sl_loop.datasets.load_dataset = lambda name: datasets.DatasetDict({"train": datasets.Dataset.from_list(placed)})
    sl_loop.conversation_to_datum = lambda messages, *rest: by_row[messages[0]["content"]]
    sl_loop.model_info.get_recommended_renderer_name = lambda name: job["renderer"]
    sl_loop.main(sl_loop.Config(
        base_url=job["base_url"], log_path=str(log_path), model_name=job["model_folder"],
        batch_size=job["batch_size"], learning_rate=job["learning_rate"], lora_rank=job["lora_rank"],
        max_steps=job["steps"] + 1, save_every=0,  # the first step, JAX compiling, is not counted
    ))
    metrics = [json.loads(line) for line in (log_path / "metrics.jsonl").read_text().splitlines()]
    return [m["time_total"] for m in metrics if "time_total" in m][1:]


async def sample(job: dict, log_path: Path) -> dict:
    """The prompts through the cookbook's Inspect model API, on the final trained weights."""
    import tinker
    from inspect_ai.model import ChatMessageSystem, ChatMessageUser, GenerateConfig
    from tinker_cookbook import checkpoint_utils
    from tinker_cookbook.eval.inspect_utils import InspectAPIFromTinkerSampling

    sampler_path = checkpoint_utils.get_last_checkpoint(str(log_path), required_key="sampler_path").sampler_path
    client = tinker.ServiceClient(base_url=job["base_url"]).create_sampling_client(model_path=sampler_path).result()
    api = InspectAPIFromTinkerSampling(renderer_name=job["renderer"], model_name=job["model_folder"],
                                       sampling_client=client)
    config = GenerateConfig(max_tokens=job["max_tokens"], temperature=0.0)
    conversations = [[ChatMessageSystem(content=job["system"]), ChatMessageUser(content=q)] for q in job["questions"]]
    same_prompts = [
        api.renderer.build_generation_prompt([{"role": m.role, "content": m.content} for m in c]).to_ints() == p
        for c, p in zip(conversations, job["prompts"])
    ]
    await asyncio.gather(*(api.generate(c, [], "none", config) for c in conversations))  # warm-up, uncounted
    start = time.perf_counter()
    outputs = await asyncio.gather(*(api.generate(c, [], "none", config) for c in conversations))
    wall = time.perf_counter() - start
    return {"wall_seconds": wall, "samples": len(outputs),
            "output_tokens": sum(o.usage.output_tokens for o in outputs),
            "same_prompt_tokens": all(same_prompts)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The tinker-cookbook side of bench/tinker_server.py.")
    parser.add_argument("job", type=Path, help="the job bench/tinker_server.py wrote")
    parser.add_argument("result", type=Path, help="where to write step times and sampling")
    args = parser.parse_args()
    job = json.loads(args.job.read_text())
    log_path = Path(tempfile.mkdtemp(prefix="sl-loop-"))
    result = {"step_seconds": train(job, log_path), "sampling": asyncio.run(sample(job, log_path))}
    args.result.write_text(json.dumps(result, indent=2))
