"""lmkit.distributed (notebook 13): shards, the ZeRO and ring arithmetic, the measurements, and data parallelism
written by hand in two real processes, equal to one process.

The hand-written script is the one notebook 13 writes with ``%%writefile``: the test takes it from the notebook, so
that what CI checks is what the learner runs.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lmkit import distributed as ld

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "13_training_across_processes.ipynb"


# ------------------------------------------------------------------------------------------------ shards
def test_shards_are_contiguous_equal_and_cover_the_batch():
    batch = torch.arange(24).reshape(8, 3)
    parts = [ld.shard(batch, r, 4) for r in range(4)]
    assert [p.shape[0] for p in parts] == [2, 2, 2, 2]
    assert torch.equal(torch.cat(parts), batch)


@pytest.mark.parametrize("batch, world", [(7, 2), (8, 3), (1, 2)])
def test_a_world_size_that_does_not_divide_the_batch_is_one_line(batch, world):
    with pytest.raises(ValueError) as err:
        ld.check_world_size(batch, world)
    message = str(err.value)
    assert "\n" not in message and f"global_batch={batch}" in message and f"world_size={world}" in message
    assert "multiple of" in message


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "2"])
def test_bad_world_sizes_and_ranks_are_refused(bad):
    with pytest.raises(ValueError):
        ld.check_world_size(8, bad)
    with pytest.raises(ValueError):
        ld.shard(torch.zeros(8, 2), bad if bad != 0 else 2, 2)


def test_launch_refuses_a_batch_that_does_not_split_before_any_process_starts(monkeypatch, tmp_path):
    started = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: started.append(a))
    with pytest.raises(ValueError, match="global_batch=9"):
        ld.launch(tmp_path / "train.py", 2, global_batch=9)
    assert started == []


# ------------------------------------------------------------------------------------------- arithmetic
def test_zero_stages_follow_the_paper():
    psi, n = 1_000, 4
    # float32 + AdamW: 4 + 4 + 8 bytes per parameter
    assert ld.zero_bytes(psi, n, 0) == 16 * psi
    assert ld.zero_bytes(psi, n, 1) == 8 * psi + 8 * psi / n
    assert ld.zero_bytes(psi, n, 2) == 4 * psi + 12 * psi / n
    assert ld.zero_bytes(psi, n, 3) == 16 * psi / n
    # the paper's example (section 5): 7.5B parameters, mixed precision (2 + 2 + 12), 64 GPUs: 120, 31.4, 16.6, 1.9 GB
    gb = [ld.zero_bytes(7_500_000_000, 64, s, param_bytes=2, grad_bytes=2, optimizer_bytes=12) / 1e9 for s in range(4)]
    assert [round(g, 1) for g in gb] == [120.0, 31.4, 16.6, 1.9]
    with pytest.raises(ValueError):
        ld.zero_bytes(psi, n, 4)


def test_ring_bytes():
    assert ld.ring_bytes("all_reduce", 800, 8) == pytest.approx(2 * 7 / 8 * 800)
    assert ld.ring_bytes("all_gather", 800, 8) == pytest.approx(7 / 8 * 800)
    assert ld.ring_bytes("reduce_scatter", 800, 1) == 0
    with pytest.raises(ValueError):
        ld.ring_bytes("broadcast", 800, 8)


def test_state_bytes_counts_parameters_gradients_and_adamw_moments_once():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    opt = torch.optim.AdamW(model.parameters())
    assert ld.state_bytes(model, opt) == {"parameters": 4 * 23, "gradients": 0, "optimizer": 0, "total": 4 * 23}
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    model(torch.randn(5, 4)).sum().backward()
    got = ld.state_bytes(model, opt)
    assert got == {"parameters": 92, "gradients": 92, "optimizer": 184, "total": 368}  # the step counters are scalars


def test_max_difference_refuses_different_names():
    a = {"w": torch.zeros(2)}
    assert ld.max_difference(a, {"w": torch.tensor([0.0, -0.5])}) == 0.5
    with pytest.raises(ValueError, match="different names"):
        ld.max_difference(a, {"v": torch.zeros(2)})


def test_relative_distance_is_the_norm_of_the_difference_over_the_norm():
    a = {"w": torch.tensor([3.0, 0.0]), "v": torch.tensor([4.0])}
    b = {"w": torch.tensor([3.0, 1.0]), "v": torch.tensor([4.0])}
    assert ld.relative_distance(a, b) == pytest.approx(1 / 5)
    assert ld.relative_distance(a, a) == 0.0
    with pytest.raises(ValueError, match="different names"):
        ld.relative_distance(a, {"w": torch.zeros(2)})


def test_summaries_are_found_when_processes_write_into_one_line():
    a, b = '{"step": 4, "train_loss": 1.5}', '{"step": 4, "train_loss": 1.5, "x": null}'
    assert ld.summaries(f"noise {a}{b}\nmore {a}") == [json.loads(a), json.loads(b), json.loads(a)]


def test_the_lesson_problem_is_the_same_from_the_same_seed():
    p, q = ld.lesson_problem(3, 4), ld.lesson_problem(3, 4)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(p.batches, q.batches))
    assert ld.max_difference(ld.full_state(ld.lesson_model(p)), ld.full_state(ld.lesson_model(q))) == 0.0
    assert not torch.equal(ld.lesson_problem(3, 4, seed=1).batches[0][0], p.batches[0][0])


# ------------------------------------------------------------------------------- two processes, for real
def _notebook_script(name: str) -> str:
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and source.startswith(f"%%writefile {name}"):
            return source.split("\n", 1)[1]
    raise AssertionError(f"notebook 13 has no %%writefile {name} cell")


@pytest.mark.integration
def test_hand_written_data_parallelism_equals_one_process(tmp_path, monkeypatch):
    (tmp_path / "dp_by_hand.py").write_text(_notebook_script("dp_by_hand.py"))
    steps, batch = 4, 8
    run = ld.launch(tmp_path / "dp_by_hand.py", 2, [tmp_path, steps, batch], global_batch=batch, cwd=tmp_path)
    assert run.returncode == 0
    monkeypatch.syspath_prepend(str(tmp_path))
    import dp_by_hand

    torch.set_num_threads(1)
    one, _ = dp_by_hand.train(rank=0, world=1, steps=steps, global_batch=batch)
    reference = ld.full_state(one)
    start = ld.full_state(ld.lesson_model(ld.lesson_problem(steps, batch)))
    assert ld.max_difference(reference, start) > 1e-2, "training did not move the weights: equality would prove nothing"
    synced = [ld.load_weights(tmp_path / f"synced-{rank}.safetensors") for rank in (0, 1)]
    assert ld.max_difference(*synced) == 0.0, "the averaged copies drifted apart"
    assert ld.max_difference(reference, synced[0]) < 1e-4
    # the control: without the all-reduce the two processes train two different models
    unsynced = [ld.load_weights(tmp_path / f"unsynced-{rank}.safetensors") for rank in (0, 1)]
    assert ld.max_difference(reference, unsynced[0]) > 1e-3 and ld.max_difference(*unsynced) > 1e-3


@pytest.mark.integration
def test_collective_log_and_loopback_see_an_all_reduce(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(
        "import sys, torch, torch.distributed as dist\n"
        "from lmkit import distributed as ld\n"
        "dist.init_process_group('gloo')\n"
        "log = ld.CollectiveLog()\n"
        "with log:\n"
        "    dist.all_reduce(torch.ones(1000))\n"
        "ld.write_report(sys.argv[1], dist.get_rank(), {'events': log.events, 'bench': ld.bench_collectives(1 << 20, 1)})\n"
        "dist.destroy_process_group()\n")
    run = ld.launch(script, 2, [tmp_path], out=tmp_path)
    assert len(run.reports) == 2
    assert run.reports[0]["events"] == [["all_reduce", 4000]]
    bench = run.reports[0]["bench"]
    if ld.loopback_bytes() is not None:
        # all processes together send 2(N-1)/N·S each for an all-reduce: 2·S in all for N = 2 (headers add a little)
        assert 1.95 < bench["all_reduce"]["median"] < 2.1 and 0.95 < bench["all_gather"]["median"] < 1.05


def test_launch_reports_a_failing_process(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text("raise SystemExit('no such luck')\n")
    with pytest.raises(RuntimeError, match="torchrun exited"):
        ld.launch(script, 1)


def test_exercise_checkers_of_notebook_13_accept_the_answer_and_refuse_wrong_ones(monkeypatch):
    from lmkit import exercises

    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)  # a wrong answer returns False instead of raising

    stage2 = ld.zero_bytes(7_000_000_000, 64, 2, param_bytes=2, grad_bytes=2, optimizer_bytes=12) / 2**30
    assert exercises.check("13.1", stage2)
    assert not exercises.check("13.1", 16 * 7e9 / 64 / 2**30)             # stage 3's figure
    assert not exercises.check("13.1", 16 * 7e9 / 2**30)                  # no sharding
    assert exercises.check("13.2", [0.25, 0.25, 0.5])
    assert not exercises.check("13.2", [1 / 3, 1 / 3, 1 / 3])             # equal weights: the plain mean
    assert not exercises.check("13.2", [0.25, 0.25])
    ring = ld.ring_bytes("all_reduce", 4 * 134_515_008, 8)
    assert exercises.check("13.3", ring)
    assert not exercises.check("13.3", 4 * 134_515_008)                   # the buffer, not what a process sends
    assert not exercises.check("13.3", ring / 2)                          # one half of the ring only
