"""dlnotes.applications.word2vec: subsampling, skip-gram pairs, the noise distribution, the loss, training
on a corpus with two topics, nearest neighbours and analogies."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dlnotes.applications import word2vec as w2v
from dlnotes.sequences import text


def test_keep_probabilities_thin_out_frequent_tokens_only():
    counts = torch.tensor([100000, 1000, 10, 1])
    keep = w2v.keep_probabilities(counts, threshold=1e-3)
    freq = counts / counts.sum()
    assert keep[0] == pytest.approx(math.sqrt(1e-3 / freq[0].item()), rel=1e-5)
    assert keep[2] == keep[3] == 1.0 and keep[0] < keep[1] <= 1.0
    corpus = torch.tensor([0] * 1000 + [3] * 10)
    kept = w2v.subsample(corpus, counts, threshold=1e-3, generator=torch.Generator().manual_seed(0))
    assert kept[1000:].all() and kept[:1000].float().mean() == pytest.approx(keep[0].item(), abs=0.05)


def test_window_one_gives_every_neighbour_both_ways_and_no_pair_spans_two_texts():
    corpus = torch.tensor([5, 6, 7, 8, 9])
    centres, contexts = w2v.skipgram_pairs(corpus, max_window=1)
    expected = {(5, 6), (6, 5), (6, 7), (7, 6), (7, 8), (8, 7), (8, 9), (9, 8)}
    assert set(zip(centres.tolist(), contexts.tolist())) == expected and len(centres) == 8
    starts = torch.tensor([True, False, False, True, False])  # two texts: 5 6 7 | 8 9
    centres, contexts = w2v.skipgram_pairs(corpus, max_window=1, starts=starts)
    assert set(zip(centres.tolist(), contexts.tolist())) == expected - {(7, 8), (8, 7)}
    with pytest.raises(ValueError, match="max_window"):
        w2v.skipgram_pairs(corpus, max_window=0)


def test_wider_windows_pair_near_tokens_more_often_than_far_ones():
    corpus = torch.arange(2000)
    centres, contexts = w2v.skipgram_pairs(corpus, max_window=3, generator=torch.Generator().manual_seed(0))
    distance = (contexts - centres).abs()
    counts = torch.bincount(distance, minlength=4)[1:].tolist()
    assert distance.min() >= 1 and distance.max() <= 3
    assert counts[0] > counts[1] > counts[2] > 0  # each centre draws w in 1..3: distance 1 always fits
    assert counts[0] == pytest.approx(2 * 2000, rel=0.01) and counts[2] == pytest.approx(2 * 2000 / 3, rel=0.1)


def test_text_starts_survive_subsampling():
    starts = torch.tensor([True, False, False, True, False, True, False])
    keep = torch.tensor([True, False, True, False, True, False, True])  # the second text loses its first token
    assert w2v._carry_starts(starts, keep).tolist() == [True, False, True, True]


def test_the_noise_distribution_and_the_loss():
    counts = torch.tensor([16.0, 1.0, 81.0])
    weights = w2v.noise_weights(counts)
    assert weights.sum() == pytest.approx(1.0) and torch.allclose(weights, counts ** 0.75 / (counts ** 0.75).sum())
    scores = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    expected = (-F.logsigmoid(scores[:, 0]) - F.logsigmoid(-scores[:, 1:]).sum(dim=1)).mean()
    assert w2v.negative_sampling_loss(scores) == pytest.approx(expected.item(), rel=1e-6)


def test_the_score_of_a_pair_is_the_dot_product_of_its_vectors():
    torch.manual_seed(0)
    model = w2v.SkipGram(10, dim=4)
    torch.nn.init.normal_(model.context.weight)
    centres, candidates = torch.tensor([1, 2]), torch.tensor([[3, 4, 5], [6, 7, 8]])
    scores = model(centres, candidates)
    assert scores.shape == (2, 3)
    expected = torch.dot(model.centre.weight[2], model.context.weight[8])
    assert scores[1, 2].item() == pytest.approx(expected.item(), rel=1e-5)


def test_training_separates_two_topics():
    g = torch.Generator().manual_seed(0)
    topic = torch.randint(0, 2, (400,), generator=g)  # 400 short texts, each about one topic
    corpus = (topic[:, None] * 10 + torch.randint(0, 10, (400, 8), generator=g)).flatten()  # tokens 0-9 or 10-19
    starts = torch.zeros(len(corpus), dtype=torch.bool)
    starts[::8] = True
    counts = torch.bincount(corpus, minlength=20)
    torch.manual_seed(0)
    model = w2v.SkipGram(20, dim=8)
    run = w2v.train_word2vec(model, w2v.Corpus(corpus, starts, text.Vocab(), counts), num_epochs=5,
                             batch_size=256, lr=0.01, max_window=3, num_negatives=4, threshold=1.0, generator=g)
    assert run.losses[-1] < run.losses[0] and len(run.pairs_per_epoch) == 5
    vectors = model.centre.weight.detach()
    for token in (0, 13):
        _, neighbours = w2v.nearest(vectors, vectors[token], k=5, exclude=[token])
        assert all(n // 10 == token // 10 for n in neighbours.tolist())


def test_nearest_and_analogy_on_vectors_built_to_have_one():
    man, woman, king, queen, apple = range(5)
    vectors = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [1.0, 0, 1.0, 0], [0, 1.0, 1.0, 0], [0, 0, 0, 1.0]])
    assert w2v.analogy(vectors, man, king, woman).tolist() == [queen]
    sims, idx = w2v.nearest(vectors, vectors[king], k=2, exclude=[king])
    assert set(idx.tolist()) == {man, queen} and sims[0] == pytest.approx(1 / math.sqrt(2))


def test_ppmi_svd_finds_the_topics_of_the_pairs_it_counts():
    g = torch.Generator().manual_seed(1)
    topic = torch.randint(0, 2, (300,), generator=g)
    corpus = (topic[:, None] * 10 + torch.randint(0, 10, (300, 8), generator=g)).flatten()
    starts = torch.zeros(len(corpus), dtype=torch.bool)
    starts[::8] = True
    centres, contexts = w2v.skipgram_pairs(corpus, max_window=3, starts=starts, generator=g)
    vectors = w2v.ppmi_svd(centres, contexts, vocab_size=20, dim=4)
    assert vectors.shape == (20, 4)
    assert w2v.group_purity(vectors, [list(range(10)), list(range(10, 20))]) == 1.0


def test_count_vectors_are_the_svd_of_one_epochs_pairs_and_find_two_topics():
    g = torch.Generator().manual_seed(2)
    topic = torch.randint(0, 2, (200,), generator=g)
    docs = (topic[:, None] * 10 + torch.randint(0, 10, (200, 8), generator=g)).tolist()
    corpus = w2v.build_corpus([[str(t) for t in doc] for doc in docs], min_freq=1)
    torch.manual_seed(0)  # svd_lowrank draws from the global generator
    vectors = w2v.count_vectors(corpus, max_window=3, dim=4, generator=torch.Generator().manual_seed(5))
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(5)
    centres, contexts = w2v.epoch_pairs(corpus, max_window=3, threshold=1.0, generator=g)
    assert torch.allclose(vectors, w2v.ppmi_svd(centres, contexts, vocab_size=len(corpus.vocab), dim=4))
    groups = [[corpus.vocab[str(t)] for t in range(k, k + 10)] for k in (0, 10)]
    assert w2v.group_purity(vectors, groups) == 1.0


def test_group_purity_by_hand():
    vectors = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.8, 0.2]])
    assert w2v.group_purity(vectors, [[0, 1], [2, 3]]) == 1.0
    assert w2v.group_purity(vectors, [[0, 2], [1, 3]]) == 0.0
    assert w2v.group_purity(vectors, [[0, 1, 2], [3, 4]]) == pytest.approx(2 / 5)  # 0, 1 right; 2 -> 3, 3 -> 2, 4 -> 1


def test_build_corpus_drops_rare_tokens_and_marks_where_texts_start():
    corpus = w2v.build_corpus([["a", "b", "a"], ["rare"], ["b", "a", "c"]], min_freq=2)
    assert corpus.vocab.to_tokens(corpus.tokens).count("a") == 3 and len(corpus.tokens) == 5
    assert corpus.starts.tolist() == [True, False, False, True, False]  # the text of only "rare" is gone
    assert corpus.counts[corpus.vocab["a"]] == 3 and corpus.counts[corpus.vocab.unk] == 0
    assert "5 tokens, 2 texts" in repr(corpus)


def test_the_two_real_corpora_load():
    english = w2v.python_docs()
    assert len(english) > 50 and sum(map(len, english)) > 50000 and "tuple" in {w for doc in english for w in doc}
    poems = w2v.tang_characters(source="tang300")
    assert len(poems) > 300 and all("\u4e00" <= c <= "\u9fff" for p in poems for c in p)
    assert "月" in {c for p in poems for c in p}
