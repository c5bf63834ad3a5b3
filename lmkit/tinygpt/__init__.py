"""The code of notebooks 10 and 11 that tests, checkpoints and exercise checkers reuse, one idea per module.

| module | what it holds |
|---|---|
| :mod:`~lmkit.tinygpt.tokenizer` | ``CharTokenizer``: characters as tokens |
| :mod:`~lmkit.tinygpt.model` | ``GPTConfig``, ``CausalSelfAttention``, ``FeedForward``, ``Block``, ``GPT`` (notebook 10's names) |
| :mod:`~lmkit.tinygpt.rnn` | the recurrent baseline: ``RNNConfig``, ``RNNLM``, ``rnn_like`` |
| :mod:`~lmkit.tinygpt.sizes` | ``n_params``, ``flops_per_token`` |
| :mod:`~lmkit.tinygpt.training` | ``get_batch``, ``estimate_loss``, ``token_nll``, ``lr_at``, ``num_threads``, ``History``, ``plot_history`` |
| :mod:`~lmkit.tinygpt.sampling` | ``generate``, ``sample`` |
| :mod:`~lmkit.tinygpt.checkpoint` | ``save``, ``load`` (safetensors, atomic), ``CharLM`` |
| :mod:`~lmkit.tinygpt.fitting` | under- and overfitting: ``window_ids``, ``window_losses``, ``ngram_window_losses``, ``train_curves``, ``Curves``, ``measured_rise``, ``name_regimes``, ``Regime``, ``plot_capacity`` |

Notebook 10 writes the tiny GPT and its training loop in cells and asserts that :class:`GPT` here is the same code
(same weights from the same seed, same logits); the training loop lives only in its cells. The GPT grown into
SmolLM2's architecture (notebook 11) is :mod:`lmkit.llama`; its names are importable from here too. Every public name
is here: ``from lmkit import tinygpt as tg; tg.GPT(tg.GPTConfig(...))``.
"""
from lmkit.llama import (MLP, Attention, GroupedQueryAttention, Llama, LlamaBlock, RMSNorm, SmolLM2, SwiGLU,
                         greedy, llama_inv_freq)
from lmkit.tinygpt.checkpoint import CharLM, load, save
from lmkit.tinygpt.fitting import (REGIMES, Curves, Regime, measured_rise, name_regimes, ngram_window_losses,
                                   plot_capacity, train_curves, window_ids, window_losses)
from lmkit.tinygpt.model import GPT, Block, CausalSelfAttention, FeedForward, GPTConfig, Output, TinyGPT
from lmkit.tinygpt.rnn import RNNLM, RNNConfig, rnn_like
from lmkit.tinygpt.sampling import generate, sample
from lmkit.tinygpt.sizes import flops_per_token, n_params
from lmkit.tinygpt.tokenizer import CharTokenizer
from lmkit.tinygpt.training import (History, estimate_loss, get_batch, lr_at, num_threads, plot_history,
                                    token_nll)

__all__ = ["CharTokenizer", "GPTConfig", "Output", "CausalSelfAttention", "FeedForward", "Block", "GPT", "TinyGPT",
           "RNNConfig", "RNNLM", "rnn_like", "n_params", "flops_per_token", "get_batch", "estimate_loss", "History",
           "num_threads", "lr_at", "token_nll", "generate", "sample", "CharLM", "save", "load", "plot_history", "llama_inv_freq",
           "RMSNorm", "Attention", "MLP", "SmolLM2", "greedy", "Llama", "GroupedQueryAttention", "SwiGLU",
           "LlamaBlock", "REGIMES", "Curves", "Regime", "window_losses", "train_curves", "measured_rise", "name_regimes",
           "plot_capacity"]
