"""Fine-tuning on several processes: ``accelerate launch --multi_gpu --num_processes 2 -m lmkit.finetune`` on a CPU.

On a machine with no GPU, ``--multi_gpu`` starts the processes with torchrun and Accelerate runs them as MULTI_CPU
over gloo. (``accelerate launch --cpu --num_processes 2`` does NOT: without an MPI host file it starts one process,
silently; measured with accelerate 1.15, see docs/troubleshooting.md.)

Two processes with micro-batch b see, at every optimizer step, the same examples as one process with micro-batch 2b,
and the loss is normalised by the tokens of all processes together, so the two runs must agree: the same losses and
the same final weights, within 1e-5. A checkpoint written by two processes resumes in one.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(torch.cuda.is_available(), reason="--multi_gpu would use the GPUs here")]

WORDS = "the a cat dog sat on mat and ran to house big small red blue one two three four five".split()


def _data(path: Path, n: int = 16) -> Path:
    rows = []
    for i in range(n):
        words = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(3 + i % 4)]
        rows.append({"prompt": " ".join(words[:2]), "completion": " " + " ".join(words[2:])})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _config(tmp: Path, model: Path, name: str, micro: int, **extra) -> Path:
    cfg = {"model": str(model), "method": "full", "train_data": str(_data(tmp / "train.jsonl")),
           "val_data": str(_data(tmp / "val.jsonl", 4)), "max_steps": 4, "micro_batch_size": micro,
           "lr": 1e-2, "warmup_steps": 0, "schedule": "constant", "eval_every": 0, "save_every": 2,
           "output_dir": str(tmp / name), "progress": False, "save_model": True, "seed": 0,
           "attn_implementation": "eager", "mixed_precision": "no", **extra}
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(cfg))
    return path


def _summaries(stdout: str) -> list[dict]:
    """Every summary object the processes printed (they share one stdout): :func:`lmkit.distributed.summaries`."""
    from lmkit.distributed import summaries

    return summaries(stdout)


def _run(cmd: list[str], cwd: Path, processes: int = 1) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    assert out.returncode == 0, f"{' '.join(cmd[:6])} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    results = _summaries(out.stdout)
    assert len(results) == processes, f"expected {processes} process(es) to report, got {len(results)}"
    same = ("step", "train_loss", "val_loss", "trainable_params")
    assert all({k: r[k] for k in same} == {k: results[0][k] for k in same} for r in results), results
    return results[0]


def _launch(config: Path, processes: int, *args: str) -> dict:
    accelerate = Path(sys.executable).with_name("accelerate")
    return _run([str(accelerate), "launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
                 "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29571",
                 "-m", "lmkit.finetune", "--config", str(config), *args], config.parent, processes)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    tensors = {}
    for path in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(path))
    assert tensors, f"no weights in {folder}"
    return tensors


def _history(run_dir: Path) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines() if line.strip()]
    return [r["train_loss"] for r in rows if r.get("train_loss") is not None]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_folder):
    tmp = tmp_path_factory.mktemp("dist")
    one = _run([sys.executable, "-m", "lmkit.finetune", "--config", str(_config(tmp, tiny_folder, "one", 4))], tmp)
    two = _launch(_config(tmp, tiny_folder, "two", 2), 2)
    return tmp, one, two


def test_two_processes_equal_one_with_twice_the_micro_batch(runs, tiny_folder):
    tmp, one, two = runs
    start = _weights(tiny_folder)
    moved = max((_weights(tmp / "one" / "model")[k] - start[k]).abs().max().item() for k in start)
    assert moved > 1e-3, "training did not move the weights, so equality below would prove nothing"
    assert one["step"] == two["step"] == 4
    assert abs(one["train_loss"] - two["train_loss"]) < 1e-5, (one, two)
    a, b = _weights(tmp / "one" / "model"), _weights(tmp / "two" / "model")
    assert a.keys() == b.keys()
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert worst < 1e-5, f"largest weight difference {worst:.2e}"



def test_a_two_process_checkpoint_resumes_in_one_process(runs, tiny_folder):
    tmp, one, _ = runs
    resumed = tmp / "resumed"
    shutil.copytree(tmp / "two", resumed)
    shutil.rmtree(resumed / "model")
    (resumed / "history.json").unlink()
    checkpoints = sorted((resumed / "checkpoints").iterdir())
    assert [p.name for p in checkpoints] == ["step-000002", "step-000004"], checkpoints
    shutil.rmtree(checkpoints[-1])  # resume from step 2: steps 3 and 4 then run in one process
    config = _config(tmp, tiny_folder, "resumed", 4, max_steps=4)
    result = _run([sys.executable, "-m", "lmkit.finetune", "--config", str(config), "--resume"], tmp)
    assert result["step"] == 4 and result["steps_run"] == 2 and result["resumed_from"] == 2
    assert abs(result["train_loss"] - one["train_loss"]) < 1e-5
    a, b = _weights(tmp / "one" / "model"), _weights(resumed / "model")
    assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) < 1e-5


def test_summaries_are_found_when_two_processes_write_into_one_line():
    a = '{"step": 4, "train_loss": 1.5}'
    b = '{"step": 4, "train_loss": 1.5, "resumed_from": null}'
    assert _summaries(f"full: 10 trainable\n{a}{b}\n\nresumed from x {a}\n") == [json.loads(a), json.loads(b),
                                                                                json.loads(a)]
