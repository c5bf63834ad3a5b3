"""Compression of notebook 14 on the tiny random Llama: int8, low-bit weights, pruning, distillation, sizes."""
from __future__ import annotations

import pytest
import torch

from conftest import make_model
from lmkit import compress as cp
from lmkit.metrics import perplexity


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one CPU thread is faster than several, and spares a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def model():
    return make_model(64, hidden_size=64, intermediate_size=128)


def ids_for(seed=0, n=24):
    return torch.randint(4, 64, (1, n), generator=torch.Generator().manual_seed(seed))


def test_dynamic_int8_output_is_close_to_fp32_and_smaller(model):
    q = cp.dynamic_int8(model)
    x = ids_for()
    with torch.no_grad():
        ref, out = model(x).logits, q(x).logits
    assert cp.relative_error(out, ref) < 0.05
    assert (out.argmax(-1) == ref.argmax(-1)).float().mean() > 0.9
    assert isinstance(model.model.layers[0].mlp.up_proj, torch.nn.Linear)  # the original is untouched
    assert cp.memory_bytes(q) < cp.memory_bytes(model)
    assert cp.disk_bytes(q) < cp.disk_bytes(model)


@pytest.mark.parametrize("bits,tol", [(8, 0.01), (4, 0.15)])
def test_weight_only_quantization_is_close_and_error_bounded(model, bits, tol):
    lin = model.model.layers[0].mlp.up_proj
    ql = cp.QuantLinear(lin, bits=bits, group_size=32)
    w, wq = lin.weight.detach(), ql.dequantize()
    step = ql.scale.float().repeat_interleave(32, dim=1)
    assert ((w - wq).abs() <= step / 2 + 1e-6).all()  # rounding error at most half a step
    assert ql.codes().max() <= 2**bits - 1
    assert ql.qweight.numel() == w.numel() * bits // 8  # packed: 4-bit codes two per byte
    q = cp.quantize_weights(model, bits=bits, group_size=32)
    x = ids_for()
    with torch.no_grad():
        assert cp.relative_error(q(x).logits, model(x).logits) < tol
    assert isinstance(q.model.layers[1].self_attn.q_proj, cp.QuantLinear)
    assert isinstance(q.lm_head, torch.nn.Linear)  # the tied head is skipped
    assert cp.memory_bytes(q) < cp.memory_bytes(model)


def test_four_bits_are_worse_than_eight(model):
    lin = model.model.layers[0].mlp.down_proj
    errs = {b: cp.relative_error(cp.QuantLinear(lin, b, 32).dequantize(), lin.weight) for b in (8, 4, 2)}
    assert errs[8] < errs[4] < errs[2]


def test_bad_quantization_settings_are_refused(model):
    lin = model.model.layers[0].mlp.up_proj
    with pytest.raises(ValueError, match="bits=3"):
        cp.QuantLinear(lin, bits=3)
    with pytest.raises(ValueError, match="group_size=48"):
        cp.QuantLinear(lin, bits=4, group_size=48)


@pytest.mark.parametrize("target", [0.0, 0.3, 0.5, 0.9])
def test_pruning_reaches_the_asked_sparsity_on_each_layer(model, target):
    head = model.lm_head.weight.detach().clone()
    reached = cp.prune_magnitude(model, target)
    assert reached == pytest.approx(target, abs=1e-3)
    for _, lin in cp.decoder_linears(model):
        assert (lin.weight == 0).float().mean().item() == pytest.approx(target, abs=1e-3)
    assert torch.equal(model.lm_head.weight, head)  # the tied embedding/head is left alone


def test_pruning_removes_the_smallest_weights_and_nests(model):
    w0 = model.model.layers[0].mlp.up_proj.weight.detach().clone()
    cp.prune_magnitude(model, 0.5)
    w = model.model.layers[0].mlp.up_proj.weight.detach()
    assert w0.abs()[w == 0].max() <= w0.abs()[w != 0].min()
    direct = make_model(64, hidden_size=64, intermediate_size=128)
    cp.prune_magnitude(direct, 0.7)
    cp.prune_magnitude(model, 0.7)  # 0.5 then 0.7 == 0.7 directly
    assert torch.equal(model.model.layers[1].self_attn.o_proj.weight, direct.model.layers[1].self_attn.o_proj.weight)
    with pytest.raises(ValueError, match="sparsity=1.0"):
        cp.prune_magnitude(model, 1.0)


def test_shallow_copy_keeps_the_chosen_layers(model):
    student = cp.shallow_copy(model, [1])
    assert student.config.num_hidden_layers == 1 and model.config.num_hidden_layers == 2
    assert torch.equal(student.model.layers[0].mlp.up_proj.weight, model.model.layers[1].mlp.up_proj.weight)
    assert student.lm_head.weight.data_ptr() == student.model.embed_tokens.weight.data_ptr()
    assert student.model.embed_tokens.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()
    out = student.generate(ids_for(n=5), max_new_tokens=3, do_sample=False)  # the KV cache works with 1 layer
    assert out.shape == (1, 8)
    with pytest.raises(ValueError, match="layers=\\[5\\]"):
        cp.shallow_copy(model, [5])


def test_distill_loss_parts():
    s, t = torch.randn(2, 5, 11), torch.randn(2, 5, 11)
    y = torch.randint(11, (2, 5))
    ce = torch.nn.functional.cross_entropy(s.flatten(0, 1), y.flatten())
    assert cp.distill_loss(s, None, y, alpha=0.0) == pytest.approx(ce.item())
    assert cp.distill_loss(t, t, y, alpha=1.0).item() == pytest.approx(0.0, abs=1e-6)  # KL(p‖p) = 0
    assert cp.distill_loss(s, t, y, alpha=1.0).item() > 0
    with pytest.raises(ValueError, match="needs teacher_logits"):
        cp.distill_loss(s, None, y, alpha=0.5)
    loss, ce_part = cp.distill_loss(s, t, y, alpha=0.5, return_ce=True)  # the CE term alone, as well
    assert ce_part.item() == pytest.approx(ce.item())
    assert loss.item() == pytest.approx(cp.distill_loss(s, t, y, alpha=0.5).item())
    assert loss.item() != pytest.approx(ce.item())


def test_distillation_moves_the_student_towards_the_teacher(model):
    teacher = model
    ids = torch.randint(4, 64, (2000,), generator=torch.Generator().manual_seed(1))
    x = ids_for(seed=5, n=32)

    def kl_to_teacher(student):
        with torch.no_grad():
            t, s = teacher(x).logits.log_softmax(-1), student(x).logits.log_softmax(-1)
        return torch.nn.functional.kl_div(s[0], t[0], log_target=True, reduction="batchmean").item()

    student = cp.shallow_copy(teacher, [0])
    before = kl_to_teacher(student)
    losses = cp.distill(student, teacher, ids, steps=30, block_size=16, batch_size=4, lr=3e-3, alpha=1.0,
                        temperature=1.0, progress=False)
    assert len(losses) == 30 and losses[-1] < losses[0]
    assert kl_to_teacher(student) < 0.75 * before
    assert student.model.embed_tokens.weight.requires_grad  # unfrozen again afterwards


def test_distill_returns_the_ce_term_per_step(model):
    ids = torch.randint(4, 64, (500,), generator=torch.Generator().manual_seed(2))
    kw = dict(steps=3, block_size=8, batch_size=2, lr=1e-3, temperature=2.0, progress=False)
    a, b = cp.shallow_copy(model, [0]), cp.shallow_copy(model, [0])
    losses, ces = cp.distill(a, model, ids, alpha=0.5, return_ce=True, **kw)
    alone, ces_alone = cp.distill(b, model, ids, alpha=0.0, return_ce=True, **kw)
    assert len(ces) == len(losses) == 3
    assert ces_alone == pytest.approx(alone)  # alpha=0: the loss is the CE term
    assert ces[0] == pytest.approx(ces_alone[0])  # same start, same first batch: same CE before any update
    assert losses[0] != pytest.approx(ces[0])  # the KD loss is not its CE term


def test_with_model_plugs_into_perplexity(tiny_lm):
    q = cp.dynamic_int8(tiny_lm.model)
    lm_q = cp.with_model(tiny_lm, q)
    assert lm_q.tokenizer is tiny_lm.tokenizer and lm_q.model is q
    text = "the cat sat on the mat and the dog ran to the house ."
    p, pq = perplexity(tiny_lm, text, progress=False), perplexity(lm_q, text, progress=False)
    assert pq == pytest.approx(p, rel=0.05)


def test_bits_per_weight():
    assert cp.bits_per_weight(4, 64) == 4.5
    assert cp.bits_per_weight(8, 32) == 9.0


def test_dynamic_int8_can_skip_layers_and_use_per_channel_scales(model):
    q = cp.dynamic_int8(model, skip=("lm_head", "down_proj"), per_channel=True)
    assert isinstance(q.lm_head, torch.nn.Linear) and isinstance(q.model.layers[0].mlp.down_proj, torch.nn.Linear)
    up = q.model.layers[0].mlp.up_proj
    w, _ = up._packed_params._weight_bias()
    assert w.qscheme() in (torch.per_channel_symmetric, torch.per_channel_affine) and w.q_per_channel_scales().numel() == w.shape[0]
    x = ids_for()
    with torch.no_grad():
        assert cp.relative_error(q(x).logits, model(x).logits) < 0.05


def test_fake_quantization_isolates_weights_and_activations(model):
    lin = model.model.layers[0].mlp.up_proj
    x = torch.randn(5, lin.in_features)
    exact = cp.FakeQuantLinear(lin, weights=None, act_bits=None)
    assert torch.allclose(exact(x), lin(x), atol=1e-6)
    w_only = cp.FakeQuantLinear(lin, weights="channel", act_bits=None)
    step = lin.weight.abs().amax(1, keepdim=True) / 127.5
    assert ((w_only.weight - lin.weight).abs() <= step / 2 + 1e-7).all()
    xq = cp.fake_quant_activations(x, bits=7)
    assert xq.unique().numel() <= 128 and (xq - x).abs().max() <= (x.max() - x.min()) / 127 / 2 + 1e-6
    x[0, 0] = 1000.0  # one outlier coarsens every other value
    assert cp.relative_error(cp.fake_quant_activations(x, 7)[1:], x[1:]) > 10 * cp.relative_error(xq[1:], x[1:])


def test_activation_outliers_reports_every_linear_input(model):
    stats = cp.activation_outliers(model, ids_for())
    linears = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    assert sorted(stats) == sorted(linears)
    assert all(s["max / rms"] >= 1.0 for s in stats.values())


def test_activation_outliers_find_a_spike_at_its_position_and_channel():
    """A planted spike at token 0, channel 5: found there; without position 0 the ratio is the ordinary one."""
    lin = torch.nn.Linear(16, 4)
    net = torch.nn.Sequential(lin)
    x = torch.randn(1, 10, 16, generator=torch.Generator().manual_seed(0))
    x[0, 0, 5] = 500.0
    net.forward = lambda ids: lin(x)  # the hook sees x whatever ids say
    s = cp.activation_outliers(net, torch.zeros(1, 10, dtype=torch.long))["0"]
    assert (s["position"], s["channel"]) == (0, 5) and s["max |x|"] == 500.0
    assert s["max |x| after 0"] == x[0, 1:].abs().max().item() and s["rms after 0"] < s["rms"] / 5
    assert s["max / rms after 0"] < 10 < s["max / rms"]
    with pytest.raises(ValueError, match="shape"):
        cp.activation_outliers(net, torch.zeros(1, 1, dtype=torch.long))


# ----------------------------------------------------------------------------------------------- exercises 08.x
def test_exercise_08_1_layer_bytes_from_its_shape(model, monkeypatch):
    from lmkit import exercises

    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)
    lin = model.model.layers[0].mlp.down_proj
    ql = cp.QuantLinear(lin, bits=4, group_size=32)
    stored = sum(b.numel() * b.element_size() for b in (ql.qweight, ql.scale, ql.offset))
    assert exercises.check("14.1", stored, layer=lin, bits=4, group_size=32)
    assert not exercises.check("14.1", lin.weight.numel() * 4 // 8, layer=lin, bits=4, group_size=32)  # no scales
    assert not exercises.check("14.1", stored, layer=lin, bits=8, group_size=32)


def test_exercise_14_3_group_with_the_smallest_error(model, monkeypatch):
    from lmkit import exercises

    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)
    lin = model.model.layers[0].mlp.down_proj
    groups = [g for g in (4, 8, 16, 32) if lin.in_features % g == 0]
    errors = {g: cp.relative_error(cp.QuantLinear(lin, 4, g).dequantize(), lin.weight) for g in groups}
    best = min(errors, key=errors.get)
    assert exercises.check("14.3", best, layer=lin, groups=groups)
    assert not exercises.check("14.3", max(errors, key=errors.get), layer=lin, groups=groups)


def test_exercise_08_2_share_of_all_parameters_zeroed(model, monkeypatch):
    from lmkit import exercises

    monkeypatch.delenv("LMKIT_STRICT_EXERCISES", raising=False)
    total = sum(p.numel() for p in model.parameters())
    pruned = cp.prune_magnitude(__import__("copy").deepcopy(model), 0.5)
    linear = sum(lin.weight.numel() for _, lin in cp.decoder_linears(model))
    zeros = pruned * linear
    assert exercises.check("14.2", zeros / total, model=model, sparsity=0.5)
    assert not exercises.check("14.2", 0.5, model=model, sparsity=0.5)                # only the linear layers
    assert not exercises.check("14.2", zeros / (total + model.lm_head.weight.numel()), model=model,
                               sparsity=0.5)                                          # the tied head twice


def test_fake_quantization_reproduces_the_real_int8_kernel(model):
    q = cp.dynamic_int8(model)
    x = torch.randn(4, 128)
    with torch.no_grad():
        real = q.model.layers[1].mlp.down_proj(x)
        fake = cp.FakeQuantLinear(model.model.layers[1].mlp.down_proj, weights="tensor", act_bits=7)(x)
    assert cp.relative_error(real, fake) < 1e-4


# ----------------------------------------------------------------------------------------------- tied weights
def test_tied_names_lists_the_shared_head():
    tied = cp.tied_names(make_model(64))
    assert tied == {"model.embed_tokens.weight": ["model.embed_tokens.weight", "lm_head.weight"]}
    assert cp.tied_names(make_model(64, tie_word_embeddings=False)) == {}


@pytest.mark.parametrize("skip", [(), ("mlp",), ("self_attn", "mlp")])
def test_pruning_a_tied_head_is_refused_and_changes_nothing(model, skip):
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with pytest.raises(cp.TiedWeightError) as err:
        cp.prune_magnitude(model, 0.5, skip=skip)
    message = str(err.value)
    assert "lm_head.weight" in message and "model.embed_tokens.weight" in message and "untie=True" in message
    assert "\n" not in message
    for n, p in model.named_parameters():  # refused before any layer was touched
        assert torch.equal(p, before[n]), n


@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.9])
def test_untie_then_prune_leaves_the_embedding_unchanged(model, sparsity):
    emb = model.model.embed_tokens.weight.detach().clone()
    head = model.lm_head.weight.detach().clone()
    with pytest.warns(UserWarning, match="untied lm_head.weight from model.embed_tokens.weight"):
        cp.prune_magnitude(model, sparsity, skip=(), untie=True)
    assert torch.equal(model.model.embed_tokens.weight, emb)  # the embedding is exactly what it was
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()
    assert model.config.tie_word_embeddings is False
    zeros = (model.lm_head.weight == 0).float().mean().item()
    assert zeros == pytest.approx(sparsity, abs=1e-3)
    kept = model.lm_head.weight != 0
    assert torch.equal(model.lm_head.weight[kept], head[kept])  # the head's surviving weights unchanged
    model.tie_weights()  # the config now says untied: tying again does not undo the untie
    assert torch.equal(model.model.embed_tokens.weight, emb)


def test_untied_models_prune_the_head_without_fuss():
    m = make_model(64, tie_word_embeddings=False)
    emb = m.model.embed_tokens.weight.detach().clone()
    cp.prune_magnitude(m, 0.5, skip=())
    assert torch.equal(m.model.embed_tokens.weight, emb)
    assert (m.lm_head.weight == 0).float().mean().item() == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("make", [lambda m: cp.quantize_weights(m, bits=4, group_size=32, skip=()),
                                  lambda m: cp.fake_quantize(m, skip=()),
                                  lambda m: cp.dynamic_int8(m),
                                  lambda m: cp.dynamic_int8(m, per_channel=True)])
def test_quantizing_a_copy_never_touches_the_original_tied_tensor(model, make):
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    make(model)
    assert model.lm_head.weight is model.model.embed_tokens.weight  # still tied
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), n


def test_pruning_uses_torch_prune_and_leaves_no_mask(model, monkeypatch):
    from torch.nn.utils import prune

    pruned, l1_unstructured = [], prune.l1_unstructured
    monkeypatch.setattr(prune, "l1_unstructured", lambda module, *a, **k: pruned.append(module) or
                        l1_unstructured(module, *a, **k))
    cp.prune_magnitude(model, 0.5)
    layers = [lin for _, lin in cp.decoder_linears(model)]
    assert len(pruned) == len(layers) and all(a is b for a, b in zip(pruned, layers))  # torch's pruning, each layer
    for lin in layers:
        assert not hasattr(lin, "weight_mask") and "weight_orig" not in dict(lin.named_parameters())
        assert not lin._forward_pre_hooks
        assert list(lin.state_dict()) == ["weight"] and isinstance(lin.weight, torch.nn.Parameter)
        assert (lin.state_dict()["weight"] == 0).float().mean().item() == pytest.approx(0.5, abs=1e-3)  # stored


def test_activation_scale_per_token_confines_a_spike_to_its_token():
    x = torch.randn(2, 6, 16, generator=torch.Generator().manual_seed(1))
    x[:, 0, 3] = 1000.0  # the first token's spike
    per_tensor = cp.fake_quant_activations(x, 7)
    per_token = cp.fake_quant_activations(x, 7, scale="token")
    no_first = cp.fake_quant_activations(x, 7, exact_first=1)
    assert per_token.shape == no_first.shape == x.shape
    rest = x[:, 1:]
    # per tensor: the spike sets the step of every token; per token or without position 0: the ordinary step
    assert cp.relative_error(per_tensor[:, 1:], rest) > 10 * cp.relative_error(per_token[:, 1:], rest)
    assert torch.equal(no_first[:, 0], x[:, 0])
    assert torch.equal(no_first[:, 1:], cp.fake_quant_activations(rest, 7))
    for t in range(6):  # per token = each token rounded alone
        assert torch.allclose(per_token[:, t], torch.stack([cp.fake_quant_activations(r, 7) for r in x[:, t]]))
    for bad in (dict(bits=1), dict(scale="row"), dict(exact_first=-1)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            cp.fake_quant_activations(x, **{"bits": 7, **bad})
    with pytest.raises(ValueError, match="act_scale"):
        cp.FakeQuantLinear(torch.nn.Linear(16, 4), act_scale="row")


def test_fake_quantize_passes_the_activation_settings(model):
    fq = cp.fake_quantize(model, weights=None, act_bits=7, act_scale="token", act_exact_first=1)
    lin = fq.model.layers[0].mlp.down_proj
    assert (lin.act_scale, lin.act_exact_first) == ("token", 1)
    x = ids_for()
    with torch.no_grad():
        tensor, token = cp.fake_quantize(model, weights=None, act_bits=4)(x).logits, fq(x).logits
        exact = model(x).logits
    assert not torch.equal(tensor, token)
    assert cp.relative_error(token, exact) < cp.relative_error(tensor, exact)


def test_block_means_and_heldout_blocks(tiny_lm):
    nll = torch.arange(70, dtype=torch.float32)
    assert torch.equal(cp.block_means(nll, 32), torch.tensor([15.5, 47.5]))  # the last 6 tokens dropped
    for bad, match in [(torch.zeros(2, 40), "1-D"), (torch.zeros(40), "block")]:
        with pytest.raises(ValueError, match=match):
            cp.block_means(bad, 32)
    blocks = cp.heldout_block_nll(tiny_lm, tiny_lm.model, block=4, max_chars=300)
    from lmkit.data import heldout_text
    from lmkit.metrics import HELDOUT_WINDOW, token_nll
    nll = token_nll(tiny_lm, heldout_text(300), window=HELDOUT_WINDOW)
    assert blocks.numel() == nll.numel() // 4
    assert torch.allclose(blocks.mean(), nll[: blocks.numel() * 4].mean())
