"""lmkit.transformers_compat: the KV cache passes and comes back under the installed transformers' name, with no deprecation."""
import inspect
import warnings

import torch
from transformers import DynamicCache, LlamaForCausalLM

from lmkit import generate as G
from lmkit import transformers_compat as kvcache
from lmkit.profile.decoding import decode_step


def test_the_name_is_the_one_the_model_class_takes(tiny_lm):
    params = inspect.signature(type(tiny_lm.model).forward).parameters
    assert kvcache.cache_arg(tiny_lm.model) in params
    assert kvcache.cache_arg(tiny_lm.model) == ("cache" if "cache" in params else "past_key_values")
    assert kvcache.cache_arg(tiny_lm.model) == kvcache._installed_default()  # a Llama, like the reference class


def test_a_kwargs_wrapper_gets_the_installed_name(tiny_lm):
    class Wrapper(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, **kw):
            return self.inner(input_ids=input_ids, **kw)

    name = kvcache.cache_arg(Wrapper(tiny_lm.model))
    assert name in inspect.signature(LlamaForCausalLM.forward).parameters


def test_the_cache_passed_in_is_the_cache_returned(tiny_lm):
    model = tiny_lm.model
    cache = DynamicCache(config=model.config)
    ids = tiny_lm.encode("the cat sat")
    with torch.inference_mode():
        out = model(input_ids=ids, use_cache=True, **kvcache.with_cache(model, cache))
        fresh = model(input_ids=ids, use_cache=True)
    assert kvcache.returned_cache(out) is cache and cache.get_seq_length() == ids.shape[1]
    assert kvcache.returned_cache(fresh).get_seq_length() == ids.shape[1]


def test_lmkit_decode_loops_raise_no_deprecation_warning(tiny_lm):
    """On transformers >= 5.24 the old keyword warns (FutureWarning); lmkit's loops must not use it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        list(G.stream(tiny_lm, "the cat", max_new_tokens=4))
        G.speculative(tiny_lm, "the cat", G.early_exit_draft(tiny_lm, 1), num_draft_tokens=2, max_new_tokens=4)
        decode_step(tiny_lm, tiny_lm.encode("the cat sat"))()
    assert [str(w.message) for w in caught if "past_key_values" in str(w.message)] == []
