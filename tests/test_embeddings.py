"""lmkit.embeddings (notebook 02): unit tests on tiny random models, integration tests on the real ones."""
import pytest
import torch

from lmkit import embeddings as E
from conftest import make_tokenizer


# ----------------------------------------------------------------------------------------------- sentence encoder
@pytest.fixture(scope="module")
def tiny_encoder():
    from transformers import BertConfig, BertModel

    tok = make_tokenizer()
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64, pad_token_id=tok.pad_token_id)
    return E.Encoder(model=BertModel(cfg).eval(), tokenizer=tok, max_length=32, name="tiny-bert")


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(E.mean_pool(hidden, mask), torch.tensor([[2.0, 3.0]]))


def test_sentence_embeddings_are_unit_mean_pooled_and_batch_independent(tiny_encoder):
    texts = ["the cat sat on the mat .", "a dog ran", "she saw the big red house and the small blue house"]
    batched = E.sentence_embeddings(texts, tiny_encoder)
    assert batched.shape == (3, 16)
    assert torch.allclose(batched.norm(dim=-1), torch.ones(3), atol=1e-5)
    # padding the short rows must not change them: each row equals the row computed alone
    alone = torch.cat([E.sentence_embeddings(t, tiny_encoder) for t in texts])
    assert torch.allclose(batched, alone, atol=1e-5)
    # and the row is the normalised mean of the encoder's token vectors
    batch = tiny_encoder.tokenizer(texts[1], return_tensors="pt")
    with torch.no_grad():
        mean = tiny_encoder.model(**batch).last_hidden_state[0].mean(0)
    assert torch.allclose(batched[1], mean / mean.norm(), atol=1e-5)
    # batching in chunks gives the same rows
    assert torch.allclose(E.sentence_embeddings(texts, tiny_encoder, batch_size=2), batched, atol=1e-5)


@pytest.mark.parametrize("bad", [[], [1, 2], None])
def test_sentence_embeddings_rejects_bad_input(tiny_encoder, bad):
    with pytest.raises(ValueError, match="list of strings"):
        E.sentence_embeddings(bad, tiny_encoder)


@pytest.mark.integration
def test_minilm_encoder_is_cached_and_meaningful():
    enc = E.load_encoder()
    assert E.load_encoder() is enc
    assert enc.dim == 384 and enc.max_length == 256
    assert abs(sum(p.numel() for p in enc.model.parameters()) / 1e6 - 22.7) < 0.1
    v = E.sentence_embeddings(["A man is playing a guitar.", "Someone plays an instrument.",
                               "The stock market fell sharply today."])
    assert v.shape == (3, 384)
    sim = v @ v.T
    assert torch.allclose(sim.diagonal(), torch.ones(3), atol=1e-5)
    assert sim[0, 1] > sim[0, 2] + 0.2, sim
