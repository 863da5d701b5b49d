"""Tiny offline fixtures: a byte-level BPE tokenizer trained on a real paragraph and a randomly
initialised 2-layer Qwen2 decoder (hidden 64). Nothing is downloaded."""

from __future__ import annotations

import pytest
import torch
from soft_helpers import ALICE, CHAT_TEMPLATE, make_tiny_decoder
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2ForCausalLM


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models on one thread: two threads only add synchronisation, which costs 10x when other
    processes share the cores (a 2-layer decoder's step took 0.3 s on one thread, 3 s on two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([ALICE], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


@pytest.fixture
def tiny_decoder(tokenizer: PreTrainedTokenizerFast) -> Qwen2ForCausalLM:
    return make_tiny_decoder(tokenizer)
