"""Under- and overfitting, measured on the tiny GPT (notebook 10, section 6).

- :func:`window_ids`: the ``n_windows`` fixed, evenly spaced windows of a text that every loss here is measured on.
- :func:`window_losses`: the loss of each of those windows (the per-item values that :func:`lmkit.stats.compare`
  pairs; their mean is :func:`~lmkit.tinygpt.estimate_loss`); :func:`ngram_window_losses`: the same for an n-gram
  model (:class:`lmkit.ngram.NGramLM`), the baseline a neural model must beat.
- :func:`train_curves`: train a config for a budget (steps, batch) on :func:`lmkit.training.fit`, the package's one
  training loop, and return its :class:`Curves`: training and validation loss of every window at each evaluation.
- :func:`name_regimes`: name each run of a sweep with one of :data:`REGIMES` from those numbers (the rule is in its
  docstring).
- :func:`plot_capacity`: final training and validation loss against the parameter count, the gap shaded.
"""
from __future__ import annotations

import hashlib
import textwrap
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from lmkit import checks

__all__ = ["Curves", "Regime", "REGIMES", "CONCLUSIVE", "window_ids", "window_losses", "ngram_window_losses", "train_curves",
           "measured_rise", "name_regimes", "plot_capacity"]

REGIMES = ("overfitting", "sweet spot", "lowest of the sweep, not distinguished", "lowest of the sweep, at its edge",
           "cannot be told apart from the best",
           "underfitting", "wider gap, not yet overfitting", "higher, cause unclear", "shown in some seeds",
           "seeds disagree")
"""The names :func:`name_regimes` gives, in the order of its rules, then the two for seeds that name a run
differently: "shown in some seeds" (one conclusive name, :data:`CONCLUSIVE`, in some seeds, the others
inconclusive) and "seeds disagree" (two different conclusive names)."""

CONCLUSIVE = ("overfitting", "sweet spot", "underfitting")
"""The names that state a regime; the others say the numbers did not separate the run."""


def _starts(ids: torch.Tensor, block_size: int, n_windows: int) -> torch.Tensor:
    if ids.numel() <= block_size + 1:
        checks.fail(f"text of {ids.numel()} tokens is too short for block_size={block_size}: use more text")
    return torch.linspace(0, ids.numel() - block_size - 1, n_windows).long()


def window_ids(ids, block_size: int, n_windows: int = 64) -> torch.Tensor:
    """The ``n_windows`` evenly spaced windows of ``ids`` that :func:`window_losses` scores: int64
    ``[n_windows, block_size + 1]`` (inputs and the last target; notebook 10, section 6).

    The starts are ``linspace(0, len(ids) - block_size - 1, n_windows)``, those of
    :func:`lmkit.tinygpt.estimate_loss`; windows overlap when ``n_windows * (block_size + 1) > len(ids)``. Raises a
    one-line ValueError for a bad size or a text of ``block_size + 1`` ids or fewer.
    """
    block_size = checks.integer("block_size", block_size, low=1, fix="the window length, such as 64")
    n_windows = checks.integer("n_windows", n_windows, low=1, fix="pass e.g. n_windows=64")
    ids = torch.as_tensor(ids).flatten().long()
    return ids[_starts(ids, block_size, n_windows)[:, None] + torch.arange(block_size + 1)]


def ngram_window_losses(ngram, ids, block_size: int, n_windows: int = 64) -> np.ndarray:
    """Mean NLL (nats per token) of an n-gram model on each window of :func:`window_ids`: float64 ``[n_windows]``
    (notebook 10, section 6).

    Each window is scored on its own (``ngram.token_nll(window)``, :class:`lmkit.ngram.NGramLM`), so the n-gram sees
    no more context than a neural model reading the same window, and the values pair window by window with
    :func:`window_losses`. Raises a one-line ValueError for an object without ``token_nll`` or a bad window.
    """
    if not callable(getattr(ngram, "token_nll", None)):
        checks.fail(f"ngram is {checks.show(ngram, 40)}: pass a fitted lmkit.ngram.NGramLM (it has token_nll)")
    return np.array([float(np.mean(ngram.token_nll(w.numpy()))) for w in window_ids(ids, block_size, n_windows)])


@torch.no_grad()
def window_losses(model, ids, block_size: int, n_windows: int = 64, batch_size: int = 32) -> np.ndarray:
    """Mean next-token cross-entropy (nats) of each of ``n_windows`` evenly spaced windows of ``ids``: float64
    ``[n_windows]`` (notebook 10, section 6).

    The windows are those of :func:`lmkit.tinygpt.estimate_loss` (the same starts, ``block_size`` predictions each),
    so the mean of the result is its value, and every call on the same ids scores the same text: the values of two
    models, or of one model at two steps, pair window by window. The model runs in eval mode (no dropout) and is put
    back in the mode it was in. Raises a one-line ValueError for a bad size or a text of ``block_size + 1`` ids or
    fewer.
    """
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="windows per forward pass, such as 32")
    windows = window_ids(ids, block_size, n_windows)
    was_training = model.training
    model.eval()
    out = []
    for win in windows.split(batch_size):
        logits = model(win[:, :-1]).logits
        nll = F.cross_entropy(logits.flatten(0, 1).float(), win[:, 1:].flatten(), reduction="none")
        out.append(nll.view(len(win), block_size).mean(1).double())
    model.train(was_training)
    return torch.cat(out).numpy()


def _key(ids: torch.Tensor, block_size: int, n_windows: int) -> str:
    """Which windows a loss was measured on: a digest of the ids, the window length and the count."""
    digest = hashlib.sha1(ids.numpy().astype(np.int64).tobytes()).hexdigest()[:12]
    return f"{digest}/{block_size}/{n_windows}"


@dataclass
class Curves:
    """One training run of :func:`train_curves` (notebook 10, section 6).

    ``train_windows`` and ``val_windows``: float64 ``[evaluations, n_windows]``, the loss (nats per token) of each
    fixed window of the training-evaluation text and of the validation text at each evaluation step ``step``.
    ``train_loss``, ``val_loss`` (their means) and ``seconds`` (training time, evaluation excluded) make a
    :class:`Curves` plot with :func:`lmkit.tinygpt.plot_history` like a ``History``. ``train_key`` / ``val_key``
    name the windows, so that only runs measured on the same windows are paired. ``dev_windows``: the same for a
    development text (``train_curves(dev_ids=...)``), or None: early stopping chooses its step on the first half of
    those windows (:attr:`choose_windows`, :meth:`stop`), a rise after it is tested on the other half
    (:attr:`test_windows`), and the validation loss at that step is reported, so nothing is chosen on the windows it
    is tested or reported on.
    """

    n_params: int
    step: list = field(default_factory=list)
    train_windows: np.ndarray | None = None
    val_windows: np.ndarray | None = None
    seconds: list = field(default_factory=list)
    train_key: str = ""
    val_key: str = ""
    model: object = None
    dev_windows: np.ndarray | None = None

    @property
    def choose_windows(self) -> np.ndarray:
        """The windows early stopping chooses its step on: the first half of the development windows (the
        validation windows when the run has none), float64 ``[evaluations, n_windows // 2]``."""
        if self.dev_windows is None:
            return self.val_windows
        return self.dev_windows[:, : self.dev_windows.shape[1] // 2]

    @property
    def test_windows(self) -> np.ndarray:
        """The windows a rise after the chosen step is tested on: the other half of the development windows (the
        validation windows when the run has none), so the step is never chosen on the windows it is tested on."""
        if self.dev_windows is None:
            return self.val_windows
        return self.dev_windows[:, self.dev_windows.shape[1] // 2 :]

    def stop(self) -> int:
        """Index of the evaluation early stopping keeps: the lowest mean loss on :attr:`choose_windows` (the first
        half of the development windows; the validation windows when the run has none, which makes the validation
        loss there optimistic)."""
        return int(np.argmin(self.choose_windows.mean(1)))

    @property
    def train_loss(self) -> list:
        return [float(v) for v in self.train_windows.mean(1)]

    @property
    def val_loss(self) -> list:
        return [float(v) for v in self.val_windows.mean(1)]

    @property
    def gap(self) -> float:
        """Final held-out loss minus final training loss (nats per token), on :attr:`held_out_windows` (the
        development windows when the run has them, as notebook 10's gap; else the validation windows)."""
        return float(self.held_out_windows[-1].mean()) - self.train_loss[-1]

    @property
    def held_out_windows(self) -> np.ndarray:
        """The held-out windows the gap is measured on: the development windows when the run has them (text of the
        kind it trained on, never trained on, so the gap is not also a change of text), else the validation ones."""
        return self.val_windows if self.dev_windows is None else self.dev_windows


def train_curves(cfg, train_ids, val_ids, *, steps: int, batch_size: int, lr: float = 3e-3,
                 weight_decay: float = 0.1, eval_every: int = 25, n_windows: int = 64, train_eval_ids=None,
                 dev_ids=None, seed: int = 0) -> Curves:
    """Train ``TinyGPT(cfg)`` for ``steps`` steps of ``batch_size`` random windows of ``train_ids`` and return its
    :class:`Curves` (notebook 10, section 6).

    The loop is :func:`lmkit.training.fit` (AdamW with decay on matrices only, gradient norm clipped at 1) with
    notebook 10's schedule (:func:`lmkit.tinygpt.lr_at`: warm-up over the first 5% of the steps, cosine to lr/10);
    unlike notebook 10's cell, AdamW keeps PyTorch's default betas (0.9, 0.999). ``seed`` fixes the initial weights
    and the batches (:func:`lmkit.tinygpt.get_batch`), so two configs trained with one seed see the same batches.
    Before training (step 0), every ``eval_every`` steps and at the last, :func:`window_losses` scores ``n_windows`` fixed windows of
    ``val_ids`` and of ``train_eval_ids`` (default ``train_ids``; pass a shared slice so that runs trained on
    different data are scored on the same training windows) and, when given, of ``dev_ids`` (a development text
    for early stopping, :meth:`Curves.stop`). Raises a one-line ValueError, before any training, for
    a bad count, a text too short for ``cfg.block_size`` or fewer than 2 windows (an interval needs 2).
    """
    from lmkit.tinygpt.model import TinyGPT
    from lmkit.tinygpt.sizes import n_params
    from lmkit.tinygpt.training import get_batch, lr_at
    from lmkit.training import FitSettings, fit

    steps = checks.integer("steps", steps, low=1, fix="train for at least one step")
    batch_size = checks.integer("batch_size", batch_size, low=1, fix="windows per batch, such as 16")
    eval_every = checks.integer("eval_every", eval_every, low=1, fix="evaluate every N steps, such as 25")
    n_windows = checks.integer("n_windows", n_windows, low=2, fix="an interval needs 2 windows; pass e.g. 64")
    if dev_ids is not None and n_windows < 4:
        checks.fail(f"n_windows={n_windows} with dev_ids: the development windows are split in two halves of at "
                    "least 2; pass n_windows >= 4")
    seed = checks.seed("seed", seed)
    block = cfg.block_size
    train_ids = torch.as_tensor(train_ids).flatten().long()
    val_ids = torch.as_tensor(val_ids).flatten().long()
    fit_ids = train_ids if train_eval_ids is None else torch.as_tensor(train_eval_ids).flatten().long()
    dev = None if dev_ids is None else torch.as_tensor(dev_ids).flatten().long()
    texts = (("train_ids", train_ids), ("val_ids", val_ids), ("train_eval_ids", fit_ids), ("dev_ids", dev))
    for name, ids in [(n, t) for n, t in texts if t is not None]:
        if ids.numel() <= block + 1:
            checks.fail(f"{name} has {ids.numel()} tokens, too few for block_size={block}: pass more than "
                        f"{block + 1} tokens")
    torch.manual_seed(seed)
    model = TinyGPT(cfg)
    gen = torch.Generator().manual_seed(seed)
    scores: list[tuple[np.ndarray, np.ndarray]] = []
    dev_scores: list[np.ndarray] = []

    def evaluate(m) -> dict:
        tr, va = window_losses(m, fit_ids, block, n_windows), window_losses(m, val_ids, block, n_windows)
        scores.append((tr, va))
        if dev is not None:
            dev_scores.append(window_losses(m, dev, block, n_windows))
        return {"val_loss": float(va.mean())}

    settings = FitSettings(max_steps=steps, lr=lr, weight_decay=weight_decay, max_grad_norm=1.0,
                           schedule=lambda s: lr_at(s, steps, 1.0, max(1, steps // 20)), eval_every=eval_every,
                           progress=False)
    evaluate(model)  # step 0: the untrained model
    result = fit(model, lambda m, batch: (m(*batch).loss, {}), lambda _: get_batch(train_ids, block, batch_size, gen),
                 settings, evaluate=evaluate)
    evaluated = [0] + [h["step"] for h in result.history if "val_loss" in h]
    elapsed = np.concatenate([[0.0], np.cumsum(result.seconds)])
    return Curves(n_params=n_params(model), step=evaluated,
                  train_windows=np.stack([tr for tr, _ in scores]), val_windows=np.stack([va for _, va in scores]),
                  seconds=[float(elapsed[s]) for s in evaluated], train_key=_key(fit_ids, block, n_windows),
                  val_key=_key(val_ids, block, n_windows), model=result.model,
                  dev_windows=np.stack(dev_scores) if dev_scores else None)


@dataclass(frozen=True)
class Regime:
    """A run's regime: ``name`` (one of :data:`REGIMES`) and ``reason``, a sentence generated from the numbers."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def measured_rise(run: Curves, confidence: float = 0.95):
    """Did the held-out loss rise after the step early stopping keeps? (notebook 10, section 6)

    Returns ``(low, rise, fall)``: ``low = run.stop()`` (chosen on :attr:`Curves.choose_windows`, the first half of
    the development windows when the run has them), ``rise = compare(test[-1], test[low])`` on
    :attr:`Curves.test_windows` (the other half, so the step is not selected on the windows the rise is tested on;
    the validation windows for a run without development text) and ``fall = compare(train[-1], train[low])`` (:func:`lmkit.stats.compare`, paired over the windows); both None when
    ``low`` is the last evaluation. Overfitting, in :func:`name_regimes`'s rule 1, is ``rise.verdict == "higher"``
    with ``fall.verdict == "lower"``. Raises a one-line ValueError for a run without evaluations.
    """
    from lmkit.stats import compare

    run = _seeds("run", run)[0]
    low = run.stop()
    if low == len(run.step) - 1:
        return low, None, None
    return (low, compare(run.test_windows[-1], run.test_windows[low], confidence=confidence),
            compare(run.train_windows[-1], run.train_windows[low], confidence=confidence))


def _one(name: str, run: Curves, best_name: str, best: Curves, confidence: float, unit: str,
         neighbours: Sequence[tuple[str, Curves]] = (), edge: str | bool = False) -> Regime:
    """The rule of :func:`name_regimes` for one run of one seed."""
    from lmkit.stats import compare

    loss = dict(quantity="loss", unit=unit, fmt=".3f")
    gap = dict(quantity="gap", unit=unit, fmt=".3f", higher="wider", lower="narrower")
    train_loss = dict(quantity="training loss", unit=unit, fmt=".3f")

    val, train, test = run.held_out_windows, run.train_windows, run.test_windows
    held = "validation" if run.dev_windows is None else "development"
    v = None if name == best_name else compare(val[-1], best.held_out_windows[-1], confidence=confidence)
    low, rise, fall = measured_rise(run, confidence)  # the end against the step early stopping keeps
    rising = rise is not None and rise.verdict == "higher" and fall.verdict == "lower"
    if rising:  # rule 1: a measured rise is never hidden behind a low final loss
        return Regime("overfitting", f"from step {run.step[low]} to step {run.step[-1]} its training loss fell "
                      f"from {train[low].mean():.3f} to {train[-1].mean():.3f} while its {held} loss on the windows "
                      f"not used to choose the step rose from {test[low].mean():.3f} to {test[-1].mean():.3f} ("
                      + rise.sentence(f"step {run.step[-1]}", f"step {run.step[low]}", **loss) + ")")
    unrisen = "" if rise is None else (
        f"; its {held} loss on the windows not used to choose the step is at the end ({test[-1].mean():.3f}) not "
        f"higher than at the step early stopping keeps ({test[low].mean():.3f} at step {run.step[low]}): no measured "
        "rise" if rise.verdict != "higher" else
        f"; its {held} loss on the windows not used to choose the step rose from {test[low].mean():.3f} at step "
        f"{run.step[low]}, but its training loss did not fall over the same steps")
    if name == best_name:  # rule 2: the lowest, inside the sweep, and measurably below each neighbouring size
        beats = [(other, compare(val[-1], r.held_out_windows[-1], confidence=confidence)) for other, r in neighbours]
        said = "; ".join(c.sentence(name, other, quantity=f"final {held} loss", unit=unit, fmt=".3f")
                         for other, c in beats)
        falling = "" if low < len(run.step) - 1 else (
            f"; its lowest {held} loss is at the last evaluation (step {run.step[-1]}): still falling when the budget "
            "ended, so a longer budget could change which size is lowest")
        if edge:
            return Regime("lowest of the sweep, at its edge", f"the lowest final {held} loss of the sweep "
                          f"({val[-1].mean():.3f}), but it is the sweep's {edge} size, so the sweep does not say whether a "
                          "size beyond it would be lower still: " + said + unrisen + falling)
        if all(c.verdict == "lower" for _, c in beats):
            return Regime("sweet spot", f"the lowest final {held} loss of the sweep ({val[-1].mean():.3f}), "
                          "below the sizes on either side: " + said + unrisen + falling)
        return Regime("lowest of the sweep, not distinguished", f"the lowest final {held} loss of the sweep "
                      f"({val[-1].mean():.3f}), but not measurably below both neighbouring sizes: " + said + unrisen
                      + falling)
    against = f"against {best_name}, the run with the lowest final {held} loss: "
    if v.verdict != "higher":  # rule 3: not a tie, a lack of evidence either way
        return Regime("cannot be told apart from the best", against + v.sentence(
            name, best_name, quantity=f"{held} loss", unit=unit, fmt=".3f") + unrisen)
    t = compare(train[-1], best.train_windows[-1], confidence=confidence)
    g = compare(val[-1] - train[-1], best.held_out_windows[-1] - best.train_windows[-1],
                confidence=confidence)
    if t.verdict == "higher" and g.verdict != "higher":  # rule 4
        return Regime("underfitting", against + "both losses are higher and the gap is no wider: "
                      + t.sentence(name, best_name, **train_loss) + "; "
                      + v.sentence(name, best_name, quantity=f"{held} loss", unit=unit, fmt=".3f") + "; "
                      + g.sentence(name, best_name, **gap))
    if t.verdict != "higher" and g.verdict == "higher":  # rule 5: a generalisation gap, no measured rise
        return Regime("wider gap, not yet overfitting", against + "the training loss is as low or lower while the "
                      "gap is wider, but its held-out loss has not measurably risen: "
                      + t.sentence(name, best_name, **train_loss) + "; "
                      + g.sentence(name, best_name, **gap))
    return Regime("higher, cause unclear", against + f"its {held} loss is higher, but the training loss and the gap "
                  "do not say why: " + t.sentence(name, best_name, **train_loss)
                  + "; " + g.sentence(name, best_name, **gap))


def _seeds(name: str, runs) -> list:
    items = [runs] if isinstance(runs, Curves) else list(runs) if isinstance(runs, Sequence) else None
    if not items or not all(isinstance(r, Curves) for r in items):
        checks.fail(f"runs[{name!r}] is {checks.show(runs, 60)}: pass a Curves from train_curves, or a list of "
                    "them, one per seed")
    for r in items:
        if r.val_windows is None or len(r.step) == 0 or r.val_windows.shape != r.train_windows.shape:
            checks.fail(f"runs[{name!r}] has no evaluation (or training and validation windows of different "
                        "shapes): evaluate at least once, on as many windows of each text")
    return items


def name_regimes(runs: Mapping[str, Curves | Sequence[Curves]], *, confidence: float = 0.95,
                 unit: str = "nats/token", seeds: Sequence[int] | None = None) -> dict[str, Regime]:
    """Name the regime of each run of a sweep from its losses (notebook 10, section 6).

    ``runs``: name -> :class:`Curves`, or name -> a list of Curves, one per seed (seed ``k`` of every name is one
    sweep). At least 2 names, the same number of seeds each, all measured on the same training and validation
    windows (:func:`train_curves` records which). Every comparison is :func:`lmkit.stats.compare`, paired over those
    windows, at ``confidence``; ``unit`` names the loss's unit in the reasons ("nats/char" for characters). For each
    seed, the run with the lowest final held-out loss is the reference; the held-out loss is that of the development
    windows when the runs have them (:attr:`Curves.held_out_windows`: text of the training text's kind, never
    trained on; the validation text is then only a check, reported apart), else of the validation windows. Each run
    is named by the first rule that holds:

    1. **overfitting**: its held-out loss at the end is higher than at the step early stopping keeps, on
       :attr:`Curves.test_windows` (the half of the development windows the step was not chosen on,
       :meth:`Curves.stop`), while its training loss at the end is lower than there (:func:`measured_rise`);
       checked first, so a measured rise is never hidden by a low final loss;
    2. **sweet spot**: it is the reference, it has a smaller and a larger size beside it in the sweep, and its final
       held-out loss is lower than that of both (the runs next to it in parameter count); when it is the sweep's
       smallest or largest size, **lowest of the sweep, at its edge** (nothing says a size beyond it would not be
       lower still); else **lowest of the sweep, not distinguished**. The reason adds when its lowest held-out loss
       is at the last evaluation (still falling when the budget ended);
    3. **cannot be told apart from the best**: its final held-out loss cannot be told apart from the reference's
       (a lack of evidence either way, not a tie);
    4. **underfitting**: its final training loss and held-out loss are both higher than the reference's, and its
       gap (held-out minus training loss, window by window) is not higher than the reference's gap;
    5. **wider gap, not yet overfitting**: its training loss is not higher than the reference's but its gap is higher
       (a generalisation gap; overfitting needs the rise of rule 1);
    6. otherwise **higher, cause unclear**: its held-out loss is higher, and the numbers do not say which way.

    With several seeds a name stands only when every seed gives it. Otherwise, when a single conclusive name
    (:data:`CONCLUSIVE`) is given by some seeds and every other seed's name is inconclusive, the run is named
    **shown in some seeds** (the reason says "overfitting in k of n seeds" and what the others said: not shown
    there, which is not a contradiction); when two different conclusive names are given, **seeds disagree**. The
    reason lists what each seed said (names only: the seeds' reference runs may differ). The intervals over
    windows are too narrow when the windows are close together (a short slice): neighbouring windows of one scene
    are correlated, not independent items. The windows' spread is what the intervals measure; the checkpoint-to-
    checkpoint and run-to-run spread is not in them, and repeating the runs over seeds is what exposes it.
    ``seeds`` labels the seeds in the reasons (default 0, 1, ...). Returns name -> :class:`Regime`. Raises a one-line
    ValueError for fewer than 2 runs, a run without evaluations, unequal seed counts, runs measured on different
    windows, or as many ``seeds`` labels as seeds missing.
    """
    confidence = checks.probability("confidence", confidence, open_low=True, open_high=True, fix="pass e.g. 0.95")
    unit = checks.text("unit", unit, fix='pass the loss unit, such as "nats/char"')
    if not isinstance(runs, Mapping) or len(runs) < 2:
        checks.fail(f"runs has {len(runs) if isinstance(runs, Mapping) else checks.show(runs, 40)} entries: pass a "
                    "dict of at least 2 runs (a regime is named against the rest of the sweep)")
    by_name = {name: _seeds(name, r) for name, r in runs.items()}
    counts = {len(v) for v in by_name.values()}
    if len(counts) != 1:
        checks.fail(f"runs have {sorted(counts)} seeds: give every run the same seeds, in the same order")
    keys = {(r.train_key, r.val_key, r.val_windows.shape[1]) for v in by_name.values() for r in v}
    if len(keys) != 1:
        checks.fail(f"runs were measured on {len(keys)} different sets of windows: score every run on the same "
                    "training and validation windows (train_curves(..., train_eval_ids=shared slice))")
    n_seeds = counts.pop()
    labels = list(range(n_seeds)) if seeds is None else list(seeds)
    if len(labels) != n_seeds:
        checks.fail(f"seeds has {len(labels)} labels for {n_seeds} seeds per run: pass one label per seed, in order")
    per_seed = []
    for k in range(n_seeds):
        sweep = {name: v[k] for name, v in by_name.items()}
        best = min(sweep, key=lambda n: sweep[n].held_out_windows[-1].mean())  # ranked on development text
        order = sorted(sweep, key=lambda n: sweep[n].n_params)
        at = order.index(best)
        near = [(n, sweep[n]) for n in order[max(0, at - 1): at + 2] if n != best]
        edge = "smallest" if at == 0 else "largest" if at == len(order) - 1 else False
        per_seed.append({name: _one(name, run, best, sweep[best], confidence, unit, near if name == best else (),
                                    edge if name == best else False)
                         for name, run in sweep.items()})
    out = {}
    for name in by_name:
        said = [seed[name] for seed in per_seed]
        if len({r.name for r in said}) == 1:
            more = (f" (the same name in each of {len(said)} seeds, reference runs not compared; seed {labels[0]}'s "
                    "numbers)" if len(said) > 1 else "")
            out[name] = Regime(said[0].name, said[0].reason + more)
        else:
            each = ", ".join(f"seed {k} says {r.name}" for k, r in zip(labels, said))
            stated = {r.name for r in said if r.name in CONCLUSIVE}
            if len(stated) == 1:
                shown = stated.pop()
                k = sum(r.name == shown for r in said)
                why = "; ".join(f"seed {lab}: {r.reason}" for lab, r in zip(labels, said) if r.name != shown)
                falling = [lab for lab, r in zip(labels, said) if r.name == shown and "still falling" in r.reason]
                if falling:  # say it of the seeds that gave the name too, not only of the others
                    why += (f"; in seed{'s' if len(falling) > 1 else ''} {', '.join(map(str, falling))}, which "
                            f"{'say' if len(falling) > 1 else 'says'} {shown}, the lowest loss is at the last "
                            "evaluation too: still falling when the budget ended")
                out[name] = Regime("shown in some seeds", f"{shown} in {k} of {len(said)} seeds, the others "
                                   f"inconclusive (not shown there, no other regime named): {each} ({why})")
            else:
                out[name] = Regime("seeds disagree", "the seeds name it differently: " + each)
    return out


def plot_capacity(runs: Mapping[str, Curves | Sequence[Curves]], regimes: Mapping[str, Regime] | None = None,
                  ax=None):
    """Final training (dashed), validation (solid) and, when the runs have them, development (dotted) loss against
    the parameter count, log scale, the gap shaded (held-out minus training, :attr:`Curves.held_out_windows`); each point is the mean over seeds, labelled with its regime when ``regimes`` is given (notebook 10,
    section 6). Returns the axes."""
    import matplotlib.pyplot as plt

    if not isinstance(runs, Mapping) or not runs:
        checks.fail("runs is empty: pass name -> Curves (or a list of Curves per seed) from train_curves")
    by_name = {name: _seeds(name, r) for name, r in runs.items()}
    order = sorted(by_name, key=lambda n: by_name[n][0].n_params)
    x = [by_name[n][0].n_params for n in order]
    tr = [np.mean([r.train_loss[-1] for r in by_name[n]]) for n in order]
    va = [np.mean([r.val_loss[-1] for r in by_name[n]]) for n in order]
    ho = [np.mean([r.held_out_windows[-1].mean() for r in by_name[n]]) for n in order]
    dev = all(r.dev_windows is not None for v in by_name.values() for r in v)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    ax.plot(x, va, marker="o", color="C0", label="validation (held-out text)")
    if dev:
        ax.plot(x, ho, marker="o", ls=":", color="C2", label="development (training text's kind, never trained on)")
    ax.plot(x, tr, marker="o", ls="--", color="C1", label="training (text it trained on)")
    ax.fill_between(x, tr, ho, color="C3", alpha=0.15,
                    label=f"gap: {'development' if dev else 'validation'} − training")
    for n, xi, v in zip(order, x, va):
        label = n if regimes is None or n not in regimes else "\n".join([n] + textwrap.wrap(regimes[n].name, 18))
        ax.annotate(label, (xi, v), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=7)
    ax.set_xscale("log")
    ax.margins(x=0.12)
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("final loss (nats per token)")
    ax.set_title("Capacity sweep: same data, same budget")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    lo, hi = min(min(tr), min(va), min(ho)), max(max(tr), max(va), max(ho))
    ax.set_ylim(lo - 0.05 * (hi - lo) - 0.01, hi + 0.2 * (hi - lo) + 0.01)
    return ax

