"""Tiny models for the training tests, built offline: a Whisper with a word-level tokenizer and a
BERT-style sentence encoder whose tokenizer is trained here on the spot."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

TEXT_DIM = 32


@pytest.fixture(scope="session")
def asr_whisper_dir(tiny_whisper_dir, tmp_path_factory) -> Path:
    """The shared tiny Whisper plus a tokenizer, so generate() output decodes to text.

    Token i decodes to the word "w<i>": a random Whisper then "transcribes" gibberish words,
    which is all the pipeline needs."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast, WhisperConfig

    path = tmp_path_factory.mktemp("asr-whisper")
    for item in Path(tiny_whisper_dir).iterdir():
        shutil.copy(item, path / item.name)
    config = WhisperConfig.from_pretrained(path)
    tok = Tokenizer(WordLevel({f"w{i}": i for i in range(config.vocab_size)}, unk_token="w0"))
    tok.pre_tokenizer = WhitespaceSplit()
    special = f"w{config.eos_token_id}"
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=special, pad_token=special,
                                   bos_token=f"w{config.decoder_start_token_id}", unk_token="w0")
    fast.save_pretrained(path)
    return path


def _text_tokenizer():
    from tokenizers import Tokenizer, decoders
    from tokenizers.models import WordPiece
    from tokenizers.pre_tokenizers import Whitespace
    from tokenizers.processors import TemplateProcessing
    from tokenizers.trainers import WordPieceTrainer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(WordPiece(unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    tok.decoder = decoders.WordPiece()
    corpus = [f"w{i} w{i * 7 % 1000} love heart night {i}" for i in range(500)]
    tok.train_from_iterator(corpus, WordPieceTrainer(vocab_size=200, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"]))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]")


@pytest.fixture(scope="session")
def text_model_dir(tmp_path_factory) -> Path:
    """A random tiny BERT sentence encoder (32-d) saved like a sentence-transformers repo (CLS pooling)."""
    import torch
    from transformers import BertConfig, BertModel

    path = tmp_path_factory.mktemp("text-model")
    tokenizer = _text_tokenizer()
    torch.manual_seed(7)
    model = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=TEXT_DIM, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=64, max_position_embeddings=128))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "1_Pooling").mkdir()
    (path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True,
                                                                 "pooling_mode_mean_tokens": False}))
    return path


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """The models here are tiny: one thread is several times faster than two fighting over a busy
    CI machine's cores (0.01 s vs 0.15 s per training step measured); restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
