"""dlnotes.sequences.text: corpora, tokenisers, the vocabulary, the simplified script, jieba."""

from __future__ import annotations

import pytest
import torch

from dlnotes.sequences import text


def test_words_split_at_whitespace_and_chars_keep_the_spaces():
    assert text.tokenize(["the time  machine", ""]) == [["the", "time", "machine"], []]
    assert text.tokenize(["ab c"], kind="char") == [["a", "b", " ", "c"]]
    with pytest.raises(ValueError, match="kind"):
        text.tokenize(["x"], kind="bpe")


def test_the_vocabulary_orders_by_count_and_maps_rare_tokens_to_unk():
    tokens = [["b", "a", "b"], ["c", "b", "a", "d"]]
    vocab = text.Vocab(tokens, min_freq=2, reserved=["<pad>", "<eos>"])
    assert vocab.idx_to_token == ["<unk>", "<pad>", "<eos>", "b", "a"]
    assert vocab["b"] == 3 and vocab["c"] == vocab["never seen"] == vocab.unk == 0
    assert vocab[["a", "d", "<pad>"]] == [4, 0, 1]
    assert vocab.to_tokens([3, 4, 0]) == ["b", "a", "<unk>"] and vocab.to_tokens(torch.tensor([1])) == ["<pad>"]
    assert vocab.token_freqs[0] == ("b", 3)


def test_indices_and_tokens_round_trip_for_every_kept_token():
    lines = text.tokenize(["to be or not to be", "that is the question"])
    vocab = text.Vocab(lines)
    indices = text.corpus_indices(lines, vocab)
    assert indices.dtype == torch.long and indices.shape == (10,)
    assert vocab.to_tokens(indices) == [t for line in lines for t in line]
    assert len(vocab) == 1 + 8  # <unk> and the 8 distinct words


def test_ties_keep_the_order_of_first_appearance():
    assert text.Vocab(["z", "y", "x", "y", "z"]).idx_to_token == ["<unk>", "z", "y", "x"]


def test_the_unknown_rate_counts_tokens_outside_the_vocabulary():
    vocab = text.Vocab(["a", "a", "b"], min_freq=2)
    assert text.unknown_rate(["a", "b", "c", "a"], vocab) == 0.5
    with pytest.raises(ValueError, match="no tokens"):
        text.unknown_rate([], vocab)


@pytest.mark.parametrize("kwargs, message", [(dict(min_freq=0), "min_freq"),
                                             (dict(reserved=["<unk>"]), "reserved"),
                                             (dict(reserved=["<pad>", "<pad>"]), "reserved")])
def test_bad_vocabulary_settings_are_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        text.Vocab(["a"], **kwargs)


def test_cleaning_keeps_letters_only_in_lower_case():
    assert text.clean_english("  'Don't,' said Filby -- 1898!") == "don t said filby"
    assert text.clean_english("...") == ""


def test_the_time_machine_is_lower_case_letters_and_single_spaces():
    lines = text.read_time_machine()
    assert lines[0] == "the time machine by h g wells"
    assert all(set(line) <= set("abcdefghijklmnopqrstuvwxyz ") and "  " not in line for line in lines)
    chars = text.Vocab(text.tokenize(lines, kind="char"))
    assert len(chars) == 28  # <unk>, the space and 26 letters


def test_opencc_converts_to_the_simplified_script():
    assert text.to_simplified("舉頭望明月，低頭思故鄉。") == "举头望明月，低头思故乡。"
    assert text.to_simplified("床前明月光") == "床前明月光"  # already simplified: unchanged


def test_the_tang_poems_come_in_both_scripts():
    simplified = text.read_tang_poems()
    traditional = text.read_tang_poems(script="traditional")
    assert len(simplified) == len(traditional) == 366
    assert [len(p.lines) for p in simplified] == [len(p.lines) for p in traditional]
    assert sum(len(p.text) for p in simplified) == sum(len(p.text) for p in traditional)  # t2s maps 1 to 1 here
    assert text.to_simplified(traditional[0].text) == simplified[0].text != traditional[0].text
    assert len(text.read_tang_poems(source="quantang")) > 4000
    with pytest.raises(ValueError, match="source"):
        text.read_tang_poems(source="song")
    with pytest.raises(ValueError, match="script"):
        text.read_tang_poems(script="pinyin")


def test_jieba_cuts_words_and_keeps_added_words_whole():
    assert "".join(text.jieba_words("床前明月光，疑是地上霜。")) == "床前明月光，疑是地上霜。"
    sentence = "西陆蝉声唱"  # a word no other test adds (jieba's dictionary is one per process)
    before = text.jieba_words(sentence)
    assert text.add_words_to_jieba(["蝉声唱"]) == 1
    assert "蝉声唱" in text.jieba_words(sentence) and "蝉声唱" not in before


def test_the_corpus_joins_lines_with_one_space_and_decodes_back_to_the_text():
    corpus, vocab = text.time_machine_corpus()
    joined = " ".join(line for line in text.read_time_machine() if line)
    assert corpus.dtype == torch.long and len(corpus) == len(joined)
    assert "".join(vocab.to_tokens(corpus[:200])) == joined[:200]
    words, word_vocab = text.time_machine_corpus(kind="word", min_freq=3)
    assert len(words) == len(joined.split()) and (words == word_vocab.unk).any()  # rare words became <unk>


def test_verse_length_reads_the_couplets_of_a_regular_poem():
    five = text.Poem(title="静夜思", author="李白", lines=("床前明月光，疑是地上霜。", "举头望明月，低头思故乡。"))
    seven = text.Poem(title="t", author="a", lines=("朝辞白帝彩云间，千里江陵一日还。",))
    mixed = text.Poem(title="t", author="a", lines=("床前明月光，疑是地上霜。", "朝辞白帝彩云间，千里江陵一日还。"))
    assert (five.verse_length, seven.verse_length, mixed.verse_length) == (5, 7, None)
    assert text.Poem(title="t", author="a", lines=()).verse_length is None
    assert text.couplet_verse_length("床前明月光，疑是地上霜？") == 5
    for bad in ("床前明月光。疑是地上霜。", "床前明月，光疑是地上霜。", "床前，月光，疑是地上霜。", "，。", ""):
        assert text.couplet_verse_length(bad) is None, bad
