"""Writes tiny random Fish Speech v1.5.0 checkpoints; run it with Fish Speech's own Python in its checkout.

    FISH_PYTHON tests/fish_speech_tiny_checkpoint.py OUT_DIR DECODER_FILE_NAME

The LLM is a 1-layer dual-AR transformer over a 256-byte tokenizer. Its residual branches are zeroed so every hidden
state is the same vector, and its output rows are set so it emits only semantic codes below 1000 (the firefly
decoder's FSQ codebook, fish_speech/configs/firefly_gan_vq.yaml) and <|im_end|> after ~50 frames. The decoder file
is an empty state dict: tools/vqgan/inference.py load_model loads with strict=False, leaving the real-size firefly
network randomly initialised.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, os.getcwd())  # the fish-speech checkout
from fish_speech.models.text2semantic.llama import BaseTransformer

CONFIG = {
    "model_type": "dual_ar",
    "vocab_size": 1300,  # 256 byte tokens + 12 special + 1024 semantic tokens (fish_speech/tokenizer.py)
    "n_layer": 1,
    "n_head": 4,
    "dim": 64,
    "n_local_heads": 2,
    "max_seq_len": 2048,
    "codebook_size": 1000,
    "num_codebooks": 8,
    "n_fast_layer": 1,
    "rope_base": 1e6,
    "tie_word_embeddings": False,
    "use_gradient_checkpointing": False,
}


def main(out: Path, decoder_name: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    ranks = "".join(f"{base64.b64encode(bytes([i])).decode()} {i}\n" for i in range(256))
    (out / "tokenizer.tiktoken").write_text(ranks)
    (out / "config.json").write_text(json.dumps(CONFIG))
    model = BaseTransformer.from_pretrained(str(out), load_weights=False)
    tokenizer = model.tokenizer
    weights = model.state_dict()
    with torch.no_grad():
        weights["embeddings.weight"].zero_()
        weights["embeddings.weight"][:, 0] = 1  # every position's hidden state: e0, normalised to 8 * e0
        weights["codebook_embeddings.weight"].zero_()
        for name, tensor in weights.items():
            if name.startswith("layers.") and name.endswith(("attention.wo.weight", "feed_forward.w2.weight")):
                tensor.zero_()
        output = weights["output.weight"]
        output.zero_()
        output[:, 0] = -1
        output[tokenizer.semantic_begin_id : tokenizer.semantic_begin_id + 1000, 0] = 1
        output[tokenizer.get_token_id("<|im_end|>"), 0] = 1.26  # about 1 in 50 per step at temperature 0.7
    torch.save(weights, out / "model.pth")
    torch.save({}, out / decoder_name)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
