#!/usr/bin/env python3
"""Generate the tiny-transformer ONNX corpus under testdata/models/.

Every model is a randomly initialised tiny configuration (fixed seed), exported
to ONNX and stored as

    testdata/models/<name>/model.onnx
    testdata/models/<name>/test_data_set_{0,1,2}/input_N.pb, output_N.pb

(ONNX backend-test layout; each .pb is a serialized TensorProto whose name is
the graph input/output name). Reference outputs come from ONNX Runtime
(CPU, one thread, graph optimisations disabled) and are checked against
PyTorch; a model whose max abs difference exceeds 1e-4 is not written.

    python tools/corpus/generate.py              # everything
    python tools/corpus/generate.py bert-ts-eager-op17 t5
    python tools/corpus/generate.py --list

MANIFEST.tsv gets one row per written model; SKIPPED.tsv one row per model
that could not be produced, with the exact error message.
"""

import argparse
import contextlib
import io
import os
import random
import shutil
import subprocess
import sys
import time
import traceback
import warnings
import zlib

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import custom_models as cm  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(REPO, "testdata", "models")
SEED = 1234
VOCAB = 256  # all tiny models (keeps embeddings and logits small)
TOL = 1e-4
MAX_MODEL_BYTES = 2 * 1024 * 1024
PROGRESS = "/tmp/corpus-progress.txt"

MANIFEST_COLS = ["name", "architecture", "exporter", "opset", "file_bytes", "parameters",
                 "attention_kind", "attention_layers", "has_past",
                 "max_abs_diff_vs_torch", "notes"]
SKIPPED_COLS = ["name", "architecture", "exporter", "reason"]

TS_MAX_OPSET = 20      # torch 2.15 TorchScript exporter maximum
DYNAMO_NEW_OPSET = 23  # newest opset used with the dynamo exporter


class Skip(Exception):
    """Raised by a builder when the architecture cannot be produced."""


# ----------------------------------------------------------------- helpers
def seed_all(name):
    s = (SEED + zlib.crc32(name.encode())) % (2 ** 31)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)
    return np.random.default_rng(s)


def make_wrapper(module, arg_names, run):
    """nn.Module whose forward has exactly the positional args `arg_names`
    (so both exporters see named inputs) and calls run(module, *args)."""
    params = ", ".join(arg_names)
    src = f"def forward(self, {params}):\n    return self._run(self.inner, {params})\n"
    ns = {}
    exec(src, ns)  # noqa: S102 - generated from fixed identifiers
    cls = type("Wrapped", (nn.Module,), {"forward": ns["forward"]})
    w = cls()
    w.inner = module
    w._run = run
    return w.eval()


def count_params(m):
    seen, n = set(), 0
    for p in m.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            n += p.numel()
    return n


def text_sets(rng, vocab, lengths_list, pad_id=0, low=3, mask=True, extra=None, pad_to=None):
    """Data sets of token ids with right padding; lengths_list e.g.
    [[7], [6, 6], [8, 5, 3]]. Returns list of dicts name->np array."""
    sets = []
    for lengths in lengths_list:
        b, s = len(lengths), pad_to or max(lengths)
        ids = np.full((b, s), pad_id, dtype=np.int64)
        am = np.zeros((b, s), dtype=np.int64)
        for i, n in enumerate(lengths):
            ids[i, :n] = rng.integers(low, vocab, size=n)
            am[i, :n] = 1
        d = {"input_ids": ids}
        if mask:
            d["attention_mask"] = am
        if extra:
            extra(d, rng)
        sets.append(d)
    return sets


STD_LENGTHS = [[7], [6, 6], [8, 5, 3]]


def seq2seq_sets(rng, vocab, names=("input_ids", "attention_mask", "decoder_input_ids",
                                    "decoder_attention_mask"), pad_id=0, low=3):
    src = text_sets(rng, vocab, STD_LENGTHS, pad_id, low)
    tgt = text_sets(rng, vocab, [[5], [4, 4], [6, 2, 4]], pad_id, low)
    out = []
    for a, b in zip(src, tgt):
        out.append({names[0]: a["input_ids"], names[1]: a["attention_mask"],
                    names[2]: b["input_ids"], names[3]: b["attention_mask"]})
    return out


def image_sets(rng, size=32, channels=3):
    return [{"pixel_values": rng.standard_normal((b, channels, size, size)).astype(np.float32)}
            for b in (1, 2, 3)]


class Spec:
    def __init__(self, **kw):
        self.notes = ""
        self.has_past = False
        self.exporter = "ts"
        self.opset = 17
        self.attn = None
        self.example = 1          # which data set is the export example
        self.step_fn = None       # for with-past models
        self.input_renames = None
        self.optimize = True
        self.__dict__.update(kw)


# -------------------------------------------------------------- HF helpers
def hf_model(cls_name, cfg, attn="eager"):
    import transformers
    cls = getattr(transformers, cls_name)
    kw = {}
    if attn is not None:
        kw["attn_implementation"] = attn
    try:
        m = cls._from_config(cfg, **kw)
    except TypeError:
        m = cls(cfg)
    return m.eval()


def hf_run(fields, fixed_kwargs=None, names=None):
    fixed_kwargs = dict(fixed_kwargs or {})

    def run(m, *args):
        kw = dict(zip(names, args))
        kw.update(fixed_kwargs)
        out = m(**kw, return_dict=True)
        return tuple(getattr(out, f) for f in fields)
    return run


def hf_spec(name, arch, cls_name, cfg, inputs, outputs, fields, sets, attn="eager",
            fixed_kwargs=None, **kw):
    m = hf_model(cls_name, cfg, attn)
    w = make_wrapper(m, inputs, hf_run(fields, fixed_kwargs, inputs))
    kw.setdefault("attn", attn)
    return Spec(name=name, architecture=arch, module=w, params=count_params(m),
                inputs=inputs, outputs=outputs, sets=sets, **kw)


def seq_axes(inputs, outputs, out_rank3=True):
    dyn = {}
    for n in inputs:
        dyn[n] = {0: "batch", 1: "sequence"}
    for n in outputs:
        dyn[n] = {0: "batch", 1: "sequence"}
    return dyn


# ------------------------------------------------------------------ models
def build_transformer(name, rng):
    torch.backends.mha.set_fastpath_enabled(False)
    m = cm.VanillaSeq2Seq(vocab=100, d_model=32, nhead=2, layers=2, ff=64).eval()
    inputs = ["src_ids", "src_mask", "tgt_ids", "tgt_mask"]
    sets = seq2seq_sets(rng, 100, names=inputs)
    w = make_wrapper(m, inputs, lambda mm, *a: mm(*a))
    dyn = {"src_ids": {0: "batch", 1: "src_sequence"}, "src_mask": {0: "batch", 1: "src_sequence"},
           "tgt_ids": {0: "batch", 1: "tgt_sequence"}, "tgt_mask": {0: "batch", 1: "tgt_sequence"},
           "logits": {0: "batch", 1: "tgt_sequence"}}
    return Spec(name=name, architecture="torch.nn.Transformer (encoder-decoder)", module=w,
                params=count_params(m), inputs=inputs, outputs=["logits"], sets=sets, dyn=dyn,
                attention_kind="bidirectional+causal+cross", attention_layers=6,
                notes="nn.Transformer d_model=32 nhead=2 2+2 layers, batch_first, MHA fast path "
                      "disabled; token/position embeddings and output projection added around it")


def bert_cfg():
    from transformers import BertConfig
    return BertConfig(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=128, max_position_embeddings=64, type_vocab_size=2,
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def token_types(d, rng):
    b, s = d["input_ids"].shape
    tt = np.zeros((b, s), dtype=np.int64)
    if b == 3:   # sentence pairs in the mixed batch
        lengths = d["attention_mask"].sum(1)
        for i, n in enumerate(lengths):
            tt[i, n // 2:n] = 1
    d["token_type_ids"] = tt


def build_bert(name, rng, attn="eager", exporter="ts", opset=17):
    inputs = ["input_ids", "attention_mask", "token_type_ids"]
    outputs = ["last_hidden_state", "pooler_output"]
    sets = text_sets(rng, VOCAB, STD_LENGTHS, extra=token_types)
    dyn = seq_axes(inputs, ["last_hidden_state"])
    dyn["pooler_output"] = {0: "batch"}
    return hf_spec(name, "BERT", "BertModel", bert_cfg(), inputs, outputs, outputs, sets,
                   attn=attn, exporter=exporter, opset=opset, dyn=dyn,
                   attention_kind="bidirectional", attention_layers=2)


def gpt2_cfg():
    from transformers import GPT2Config
    return GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=64, n_layer=2, n_head=4,
                      bos_token_id=0, eos_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)


def llama_cfg():
    from transformers import LlamaConfig
    return LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                       rope_theta=10000.0, tie_word_embeddings=False)


def mistral_cfg():
    from transformers import MistralConfig
    return MistralConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         sliding_window=4, tie_word_embeddings=False)


def causal_lm_spec(name, arch, cls_name, cfg, rng, attn="eager", exporter="ts", opset=17,
                   kind="causal", layers=2, notes="", lengths=None):
    inputs = ["input_ids", "attention_mask"]
    sets = text_sets(rng, cfg.vocab_size, lengths or STD_LENGTHS)
    dyn = seq_axes(inputs, ["logits"])
    return hf_spec(name, arch, cls_name, cfg, inputs, ["logits"], ["logits"], sets, attn=attn,
                   exporter=exporter, opset=opset, dyn=dyn, fixed_kwargs={"use_cache": False},
                   attention_kind=kind, attention_layers=layers, notes=notes)


def build_gpt2(name, rng, attn="eager", exporter="ts", opset=17):
    return causal_lm_spec(name, "GPT-2", "GPT2LMHeadModel", gpt2_cfg(), rng, attn, exporter, opset)


def build_llama(name, rng, attn="eager", exporter="ts", opset=17):
    return causal_lm_spec(name, "Llama", "LlamaForCausalLM", llama_cfg(), rng, attn, exporter, opset,
                          notes="RoPE + GQA (4 query heads, 2 key/value heads)")


def build_mistral(name, rng):
    return causal_lm_spec(name, "Mistral", "MistralForCausalLM", mistral_cfg(), rng,
                          kind="causal+windowed", lengths=[[7], [10, 10], [12, 9, 3]],
                          notes="sliding_window=4 (sequences up to 12 so the window matters); "
                                "GQA 4 q heads / 2 kv heads")


# ------------------------------------------------------- with-past models
def past_spec(name, arch, cls_name, cfg, rng, n_layers, kv_heads, head_dim, kind, notes):
    m = hf_model(cls_name, cfg, "eager")
    return past_spec_for(name, arch, m, cfg.vocab_size, rng, n_layers, kv_heads, head_dim, kind, notes)


def past_spec_for(name, arch, m, vocab, rng, n_layers, kv_heads, head_dim, kind, notes,
                  prompt_ids=None):
    """Spec for a causal LM exported with flat past key/value inputs and
    present outputs (wrapper builds a DynamicCache from the flat tensors)."""
    from transformers import DynamicCache
    past_names, present_names, arg_past = [], [], []
    for i in range(n_layers):
        for kv in ("key", "value"):
            past_names.append(f"past_key_values.{i}.{kv}")
            present_names.append(f"present.{i}.{kv}")
            arg_past.append(f"past_{i}_{kv}")
    inputs = ["input_ids", "attention_mask"] + arg_past

    def run(mm, input_ids, attention_mask, *past):
        cache = DynamicCache()
        for i in range(n_layers):
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = mm(input_ids=input_ids, attention_mask=attention_mask, past_key_values=cache,
                 use_cache=True, return_dict=True)
        pres = []
        for layer in out.past_key_values.layers:
            pres += [layer.keys, layer.values]
        return (out.logits, *pres)

    w = make_wrapper(m, inputs, run)
    dyn = {"input_ids": {0: "batch", 1: "sequence"},
           "attention_mask": {0: "batch", 1: "total_sequence"},
           "logits": {0: "batch", 1: "sequence"}}
    for a in arg_past:
        dyn[a] = {0: "batch", 2: "past_sequence"}
    for p in present_names:
        dyn[p] = {0: "batch", 2: "total_sequence"}

    b, prompt = 2, 5
    if prompt_ids is not None:
        b, prompt = prompt_ids.shape

    def empty_past(n):
        return {a: np.zeros((b, kv_heads, n, head_dim), np.float32) for a in arg_past}

    first = {"input_ids": (prompt_ids if prompt_ids is not None else
                           rng.integers(3, vocab, size=(b, prompt))).astype(np.int64),
             "attention_mask": np.ones((b, prompt), np.int64)}
    first.update(empty_past(0))

    def step_fn(prev_inputs, prev_outputs):
        """Next single-token step: argmax of the last logits, presents -> past."""
        logits = prev_outputs[0]
        nxt = logits[:, -1, :].argmax(-1).astype(np.int64)[:, None]
        total = prev_inputs["attention_mask"].shape[1] + 1
        d = {"input_ids": nxt, "attention_mask": np.ones((b, total), np.int64)}
        for a, p in zip(arg_past, prev_outputs[1:]):
            d[a] = p
        return d

    # export example: one token on top of a 3-long past (no size-0/1 specialisation)
    example = {"input_ids": rng.integers(3, vocab, size=(b, 2)).astype(np.int64),
               "attention_mask": np.ones((b, 5), np.int64)}
    for a in arg_past:
        example[a] = rng.standard_normal((b, kv_heads, 3, head_dim)).astype(np.float32)
    return Spec(name=name, architecture=arch, module=w, params=count_params(m), inputs=inputs,
                input_renames=dict(zip(arg_past, past_names)),
                outputs=["logits"] + present_names, sets=[first], step_fn=step_fn,
                example_inputs=example, dyn=dyn, has_past=True, attn="eager",
                attention_kind=kind, attention_layers=n_layers,
                notes=notes + f"; data sets: {prompt}-token prompt with empty (length-0) past, then two "
                      "single-token greedy steps fed with the previous presents")


def build_gpt2_past(name, rng):
    return past_spec(name, "GPT-2", "GPT2LMHeadModel", gpt2_cfg(), rng, 2, 4, 16, "causal",
                     "with past key/values")


def build_llama_past(name, rng):
    return past_spec(name, "Llama", "LlamaForCausalLM", llama_cfg(), rng, 2, 2, 16, "causal",
                     "with past key/values; RoPE + GQA (4 q heads, 2 kv heads)")


def build_mistral_past(name, rng):
    return past_spec(name, "Mistral", "MistralForCausalLM", mistral_cfg(), rng, 2, 2, 16,
                     "causal+windowed",
                     "with past key/values; sliding_window=4, cache kept full-length (window applied by the mask)")


# ------------------------------------------------------------ encoders etc.
def encoder_spec(name, arch, cls_name, cfg, rng, kind, layers=2, notes="", extra_inputs=(),
                 extra=None, outputs=("last_hidden_state",), lengths=None, pad_id=0, low=3,
                 fixed_kwargs=None, exporter="ts", opset=17, attn="eager", out_dyn=None,
                 static_seq=None, static_batch=False):
    inputs = ["input_ids", "attention_mask"] + list(extra_inputs)
    sets = text_sets(rng, cfg.vocab_size, lengths or STD_LENGTHS, pad_id=pad_id, low=low,
                     extra=extra, pad_to=static_seq)
    outputs = list(outputs)
    dyn = seq_axes(inputs, [o for o in outputs if o == "last_hidden_state"])
    if static_batch:
        dyn = {}
        notes += ("; fully static shapes: the model's Python shape arithmetic (batch and sequence) "
                  "is specialised by the exporter, so all data sets share one shape")
    elif static_seq:
        dyn = {k: {0: "batch"} for k in dyn}
        notes += (f"; sequence length fixed at {static_seq} (batch dynamic): the model's Python "
                  f"shape arithmetic is specialised by both exporters, so every data set is padded "
                  f"to {static_seq} with different masks")
    for o in outputs:
        if o != "last_hidden_state":
            dyn[o] = (out_dyn or {}).get(o, {0: "batch"})
    if out_dyn:
        dyn.update(out_dyn)
    return hf_spec(name, arch, cls_name, cfg, inputs, outputs, outputs, sets, attn=attn,
                   exporter=exporter, opset=opset, dyn=dyn, attention_kind=kind,
                   attention_layers=layers, notes=notes, fixed_kwargs=fixed_kwargs)


def build_t5(name, rng):
    from transformers import T5Config
    cfg = T5Config(vocab_size=VOCAB, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2,
                   num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=32,
                   dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0)
    inputs = ["input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask"]
    sets = seq2seq_sets(rng, VOCAB)
    dyn = {"input_ids": {0: "batch", 1: "encoder_sequence"}, "attention_mask": {0: "batch", 1: "encoder_sequence"},
           "decoder_input_ids": {0: "batch", 1: "decoder_sequence"},
           "decoder_attention_mask": {0: "batch", 1: "decoder_sequence"},
           "logits": {0: "batch", 1: "decoder_sequence"},
           "encoder_last_hidden_state": {0: "batch", 1: "encoder_sequence"}}
    return hf_spec(name, "T5", "T5ForConditionalGeneration", cfg, inputs,
                   ["logits", "encoder_last_hidden_state"], ["logits", "encoder_last_hidden_state"],
                   sets, dyn=dyn, fixed_kwargs={"use_cache": False},
                   attention_kind="bidirectional+causal+cross+relative-bias", attention_layers=6,
                   notes="relative position bias buckets=8")


def build_bart(name, rng):
    from transformers import BartConfig
    cfg = BartConfig(vocab_size=VOCAB, d_model=64, encoder_layers=2, decoder_layers=2,
                     encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128,
                     decoder_ffn_dim=128, max_position_embeddings=64, dropout=0.0,
                     attention_dropout=0.0, activation_dropout=0.0, pad_token_id=1,
                     bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)
    inputs = ["input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask"]
    sets = seq2seq_sets(rng, VOCAB, pad_id=1)
    dyn = {"input_ids": {0: "batch", 1: "encoder_sequence"}, "attention_mask": {0: "batch", 1: "encoder_sequence"},
           "decoder_input_ids": {0: "batch", 1: "decoder_sequence"},
           "decoder_attention_mask": {0: "batch", 1: "decoder_sequence"},
           "logits": {0: "batch", 1: "decoder_sequence"},
           "encoder_last_hidden_state": {0: "batch", 1: "encoder_sequence"}}
    return hf_spec(name, "BART", "BartForConditionalGeneration", cfg, inputs,
                   ["logits", "encoder_last_hidden_state"], ["logits", "encoder_last_hidden_state"],
                   sets, dyn=dyn, fixed_kwargs={"use_cache": False},
                   attention_kind="bidirectional+causal+cross", attention_layers=6)


TRANSFORMERS4_ENV = "CORPUS_TRANSFORMERS4"


def transformers4_dir():
    return os.environ.get(TRANSFORMERS4_ENV) or os.path.join(sys.prefix, "transformers4")


_PATCHED = set()


def patch_method(cls, meth, old, new, regex=False):
    """Replace text in a library method's source and re-define it in the
    method's module (used for the few documented source patches)."""
    import inspect
    import re
    import textwrap
    key = (cls, meth, old)
    if key in _PATCHED:
        return
    _PATCHED.add(key)
    src = textwrap.dedent(inspect.getsource(getattr(cls, meth)))
    src = src[src.index("def " + meth):]          # drop decorators
    new_src = re.sub(old, new, src) if regex else src.replace(old, new)
    if new_src == src:
        raise Skip(f"could not patch {cls.__name__}.{meth}: pattern not found")
    ns = {}
    exec(new_src, sys.modules[cls.__module__].__dict__, ns)  # noqa: S102
    setattr(cls, meth, ns[meth])


def build_transfo_xl(name, rng):
    try:
        from transformers import TransfoXLConfig, TransfoXLModel
    except Exception as e:  # transformers 5 removed the model
        raise Skip(f"{type(e).__name__}: {e}".splitlines()[0] +
                   f" (install requirements-transfoxl.txt into {transformers4_dir()} to build it "
                   "with transformers 4.46.3)")
    import transformers
    import transformers.models.deprecated.transfo_xl.modeling_transfo_xl as mt
    # transformers 4.46.3 bug: `.type_as(dtype=...)` raises TypeError in eager mode
    patch_method(mt.TransfoXLModel, "forward", r"\.type_as\(\s*dtype=word_emb\.dtype\s*\)",
                 ".to(dtype=word_emb.dtype)", regex=True)
    # data-dependent `torch.sum(attn_mask).item()` guard; masking with an
    # all-false mask is the identity, so always masking is equivalent
    patch_method(mt.RelPartialLearnableMultiHeadAttn, "forward",
                 "attn_mask is not None and torch.sum(attn_mask).item()", "attn_mask is not None")
    cfg = TransfoXLConfig(vocab_size=VOCAB, cutoffs=[], d_model=64, d_embed=64, n_head=2, d_head=32,
                          d_inner=128, n_layer=2, mem_len=0, clamp_len=-1, dropout=0.0, dropatt=0.0,
                          adaptive=False, div_val=1, tie_projs=[False], same_length=False)
    m = TransfoXLModel(cfg).eval()
    inputs = ["input_ids"]
    sets = text_sets(rng, VOCAB, STD_LENGTHS, mask=False)
    w = make_wrapper(m, inputs, hf_run(["last_hidden_state"], {}, inputs))
    return Spec(name=name, architecture="Transformer-XL", module=w, params=count_params(m),
                inputs=inputs, outputs=["last_hidden_state"], sets=sets,
                dyn=seq_axes(inputs, ["last_hidden_state"]), attn=None,
                attention_kind="causal+relative-bias", attention_layers=2,
                exporter_extra=f"transformers {transformers.__version__}",
                notes="transformers 5.23.0 no longer has TransfoXL, so this model is built with "
                      f"transformers {transformers.__version__} (deprecated model; installed apart, "
                      "see requirements-transfoxl.txt); TransfoXLModel without memory (mem_len=0), "
                      "same_length=False, no adaptive softmax head; relative positional attention "
                      "with r_w/r_r biases; no attention-mask input (right padding does not affect "
                      "earlier positions of a causal model); two source patches: type_as(dtype=) bug "
                      "-> .to(dtype=), and the data-dependent `attn_mask.sum().item()` guard removed "
                      "(always masking is equivalent)")


def build_xlnet(name, rng):
    from transformers import XLNetConfig
    cfg = XLNetConfig(vocab_size=VOCAB, d_model=64, n_layer=2, n_head=2, d_inner=128, dropout=0.0,
                      mem_len=None, pad_token_id=5)
    return encoder_spec(
        name, "XLNet", "XLNetModel", cfg, rng, "bidirectional+relative-bias", pad_id=5, low=6,
        fixed_kwargs={"use_mems": False},
        notes="two-stream relative attention, content stream only at inference (no target mapping); "
              "relative sinusoidal positions with r_w/r_r biases")


def build_roberta(name, rng):
    from transformers import RobertaConfig
    cfg = RobertaConfig(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=66, pad_token_id=1,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return encoder_spec(name, "RoBERTa", "RobertaModel", cfg, rng, "bidirectional", pad_id=1,
                        outputs=("last_hidden_state", "pooler_output"),
                        notes="position ids derived from input_ids != pad (pad_token_id=1)")


def build_albert(name, rng):
    from transformers import AlbertConfig
    cfg = AlbertConfig(vocab_size=VOCAB, embedding_size=16, hidden_size=64, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=128, max_position_embeddings=64,
                       hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, pad_token_id=0)
    return encoder_spec(name, "ALBERT", "AlbertModel", cfg, rng, "bidirectional",
                        outputs=("last_hidden_state", "pooler_output"),
                        notes="factorised embeddings (16 -> 64); the 2 layers share one set of weights "
                              "(cross-layer sharing), so the graph has 2 attention layers on the same initializers")


def build_distilbert(name, rng):
    from transformers import DistilBertConfig
    cfg = DistilBertConfig(vocab_size=VOCAB, dim=64, n_layers=2, n_heads=2, hidden_dim=128,
                           max_position_embeddings=64, dropout=0.0, attention_dropout=0.0)
    return encoder_spec(name, "DistilBERT", "DistilBertModel", cfg, rng, "bidirectional")


def build_longformer(name, rng):
    from transformers import LongformerConfig
    cfg = LongformerConfig(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=128, max_position_embeddings=80, attention_window=4,
                           pad_token_id=1, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)

    def glob(d, rng):
        g = np.zeros_like(d["input_ids"])
        g[:, 0] = 1
        d["global_attention_mask"] = g
    return encoder_spec(name, "Longformer", "LongformerModel", cfg, rng, "windowed", pad_id=1,
                        extra_inputs=["global_attention_mask"], extra=glob,
                        lengths=[[12, 12], [10, 7], [12, 3]], static_seq=12, static_batch=True,
                        notes="attention_window=4 (sliding window of +-2) plus global attention on "
                              "token 0; sequences up to 12 so the window matters; the model pads to a "
                              "multiple of the window internally")


def build_reformer(name, rng):
    from transformers import ReformerConfig
    import transformers.models.reformer.modeling_reformer as mr
    cfg = ReformerConfig(vocab_size=320, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                         attention_head_size=32, feed_forward_size=128, attn_layers=["local", "lsh"],
                         axial_pos_embds=False, max_position_embeddings=64, lsh_attn_chunk_length=4,
                         local_attn_chunk_length=4, num_buckets=2, num_hashes=1, hash_seed=SEED,
                         is_decoder=False, pad_token_id=0, hidden_dropout_prob=0.0,
                         lsh_attention_probs_dropout_prob=0.0, local_attention_probs_dropout_prob=0.0,
                         chunk_size_lm_head=0)
    # LSH draws random rotations with torch.randn at every call; freeze them so
    # that PyTorch and the exported graph (where they become constants) agree.
    frozen = {}

    class _TorchProxy:
        def __getattr__(self, a):
            return getattr(torch, a)

        @staticmethod
        def randn(*shape, **kw):
            key = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)) else shape
            if key not in frozen:
                g = torch.Generator().manual_seed(SEED)
                frozen[key] = torch.randn(key, generator=g, dtype=kw.get("dtype") or torch.float32)
            return frozen[key]

        @staticmethod
        def manual_seed(s):
            return None
    mr.torch = _TorchProxy()
    # `attention_mask.sum().item() < batch*len` picks an extra padding bucket
    # only when the batch has padding: a data-dependent Python branch that
    # torch.export rejects. With num_hashes=1 the bucket offsets are 0, so
    # always taking the padding branch is numerically identical; patch it.
    if not getattr(mr.LSHSelfAttention, "_corpus_patched", False):
        import inspect
        import textwrap
        src = textwrap.dedent(inspect.getsource(mr.LSHSelfAttention._hash_vectors))
        cond = "attention_mask is not None and (attention_mask.sum().item() < batch_size * attention_mask.shape[-1])"
        if cond not in src:
            raise Skip("Reformer LSH padding-bucket branch not found for patching")
        src = src.replace(cond, "attention_mask is not None")
        ns = {}
        exec(src, mr.__dict__, ns)  # noqa: S102 - patched copy of the library function
        mr.LSHSelfAttention._hash_vectors = ns["_hash_vectors"]
        mr.LSHSelfAttention._corpus_patched = True
    spec = encoder_spec(name, "Reformer", "ReformerModel", cfg, rng, "windowed+LSH",
                        lengths=[[6], [8, 8], [8, 5, 3]], static_seq=8,
                        notes="attn_layers=[local, lsh], chunk length 4, 2 buckets, 1 hash; LSH "
                              "random rotations frozen to constants (torch.randn replaced by a seeded "
                              "constant while building) so PyTorch and ONNX agree; reversible residual "
                              "(output is the 2*hidden concatenation); the data-dependent "
                              "`mask.sum().item() < batch*len` padding-bucket branch is patched to "
                              "always take the padding path (identical results for num_hashes=1)")
    # materialise the frozen rotations eagerly, so tracing sees plain constants
    with torch.no_grad():
        spec.module(*to_torch(spec.sets[1], spec.inputs))
    return spec


def build_electra(name, rng):
    from transformers import ElectraConfig
    cfg = ElectraConfig(vocab_size=VOCAB, embedding_size=32, hidden_size=64, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=128, max_position_embeddings=64,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return encoder_spec(name, "ELECTRA", "ElectraModel", cfg, rng, "bidirectional",
                        notes="discriminator body; embedding_size 32 projected to hidden 64")


def build_deberta(name, rng):
    from transformers import DebertaV2Config
    cfg = DebertaV2Config(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=128, max_position_embeddings=64, relative_attention=True,
                          position_buckets=16, max_relative_positions=32, pos_att_type=["p2c", "c2p"],
                          position_biased_input=False, norm_rel_ebd="layer_norm", share_att_key=True,
                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, type_vocab_size=0)
    return encoder_spec(name, "DeBERTa-v2", "DebertaV2Model", cfg, rng,
                        "bidirectional+relative-bias",
                        notes="disentangled attention (c2p + p2c), log-bucketed relative positions "
                              "(16 buckets), shared attention key")


def build_swin(name, rng):
    from transformers import SwinConfig
    cfg = SwinConfig(image_size=32, patch_size=4, num_channels=3, embed_dim=32, depths=[2],
                     num_heads=[2], window_size=4, mlp_ratio=2.0, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0, drop_path_rate=0.0)
    dyn = {"pixel_values": {0: "batch"}, "last_hidden_state": {0: "batch"},
           "pooler_output": {0: "batch"}}
    return hf_spec(name, "Swin", "SwinModel", cfg, ["pixel_values"],
                   ["last_hidden_state", "pooler_output"], ["last_hidden_state", "pooler_output"],
                   image_sets(rng), dyn=dyn, attention_kind="windowed+relative-bias",
                   attention_layers=2,
                   notes="32x32 image, patch 4 (8x8 tokens), window 4, one stage of 2 blocks "
                         "(second block uses shifted windows); image size fixed, batch dynamic")


def build_vit(name, rng):
    from transformers import ViTConfig
    cfg = ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=64, num_hidden_layers=2,
                    num_attention_heads=2, intermediate_size=128, hidden_dropout_prob=0.0,
                    attention_probs_dropout_prob=0.0)
    dyn = {"pixel_values": {0: "batch"}, "last_hidden_state": {0: "batch"},
           "pooler_output": {0: "batch"}}
    return hf_spec(name, "ViT", "ViTModel", cfg, ["pixel_values"],
                   ["last_hidden_state", "pooler_output"], ["last_hidden_state", "pooler_output"],
                   image_sets(rng), dyn=dyn, attention_kind="bidirectional", attention_layers=2,
                   notes="32x32 image, patch 8 (16 patches + CLS); image size fixed, batch dynamic")


def custom_encoder_spec(name, arch, module, rng, vocab, kind, notes, lengths=None, out="last_hidden_state"):
    inputs = ["input_ids", "attention_mask"]
    sets = text_sets(rng, vocab, lengths or STD_LENGTHS)
    w = make_wrapper(module.eval(), inputs, lambda mm, *a: mm(*a))
    return Spec(name=name, architecture=arch, module=w, params=count_params(module), inputs=inputs,
                outputs=[out], sets=sets, dyn=seq_axes(inputs, [out]), attention_kind=kind,
                attention_layers=2, notes=notes)


def build_linformer(name, rng):
    m = cm.LinformerEncoder(vocab=VOCAB, d=64, heads=2, layers=2, ff=128, max_len=32, k=8)
    return custom_encoder_spec(name, "Linformer", m, rng, VOCAB, "low-rank",
                               "custom PyTorch module (not in transformers): keys/values projected "
                               "along the sequence by E,F in R^{32x8} (first n rows used), post-LN; "
                               "max sequence 32")


def build_performer(name, rng):
    m = cm.PerformerEncoder(vocab=VOCAB, d=64, heads=2, layers=2, ff=128, nb_features=16, seed=SEED)
    return custom_encoder_spec(name, "Performer", m, rng, VOCAB, "kernel",
                               "custom PyTorch module (not in transformers): FAVOR+ positive "
                               "orthogonal random features (16 per head, fixed), bidirectional, pre-LN")


def build_sparse_transformer(name, rng):
    m = cm.SparseTransformerLM(vocab=VOCAB, d=64, heads=2, layers=2, ff=128, stride=4)
    return custom_encoder_spec(name, "Sparse Transformer", m, rng, VOCAB, "causal+block-sparse",
                               "custom PyTorch module (not in transformers): factorised strided "
                               "attention, stride 4, head 0 local / head 1 strided, as masks on dense "
                               "attention; pre-LN decoder LM", lengths=[[7], [10, 10], [12, 9, 3]],
                               out="logits")


def build_lamda(name, rng):
    from transformers import GPTNeoXConfig
    cfg = GPTNeoXConfig(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=128, rotary_pct=1.0,
                        use_parallel_residual=True, hidden_dropout=0.0, attention_dropout=0.0,
                        tie_word_embeddings=False)
    return causal_lm_spec(name, "LaMDA (stand-in)", "GPTNeoXForCausalLM", cfg, rng,
                          notes="LaMDA has no public model or code: stand-in is a decoder-only "
                                "GPT-NeoX (rotary relative positions, parallel residual); LaMDA itself "
                                "is a decoder-only Transformer with T5-style relative attention")


def bigbird_cfg(attention_type):
    from transformers import BigBirdConfig
    return BigBirdConfig(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=128, max_position_embeddings=64,
                         attention_type=attention_type, block_size=2, num_random_blocks=1,
                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, pad_token_id=0)


def build_bigbird_full(name, rng):
    return encoder_spec(name, "BigBird", "BigBirdModel", bigbird_cfg("original_full"), rng,
                        "bidirectional", outputs=("last_hidden_state", "pooler_output"),
                        notes="attention_type=original_full")


def build_bigbird_sparse(name, rng):
    return encoder_spec(name, "BigBird", "BigBirdModel", bigbird_cfg("block_sparse"), rng,
                        "block-sparse", outputs=("last_hidden_state", "pooler_output"),
                        lengths=[[14], [20, 17], [20, 15, 9]], static_seq=20,
                        notes="attention_type=block_sparse, block_size=2, 1 random block; needs "
                              "sequence > 14 or it falls back to full attention; random blocks are "
                              "deterministic in eval mode")


def build_funnel(name, rng):
    from transformers import FunnelConfig
    cfg = FunnelConfig(vocab_size=VOCAB, block_sizes=[1, 1], d_model=64, n_head=2, d_head=32,
                       d_inner=128, num_decoder_layers=0, hidden_dropout=0.0, attention_dropout=0.0,
                       activation_dropout=0.0, max_position_embeddings=64)
    return encoder_spec(name, "Funnel Transformer", "FunnelBaseModel", cfg, rng,
                        "bidirectional+relative-bias",
                        lengths=[[6], [8, 8], [8, 5, 3]], static_seq=8,
                        notes="FunnelBaseModel block_sizes=[1,1]: second block attends from the "
                              "mean-pooled (stride 2) query sequence; relative_shift positional attention")


# -------------------------------------------------------------- registry
def variants(prefix, builder):
    out = []
    for exp in ("ts", "dynamo"):
        for attn in ("eager", "sdpa"):
            for op in (17, TS_MAX_OPSET if exp == "ts" else DYNAMO_NEW_OPSET):
                name = f"{prefix}-{exp}-{attn}-op{op}"
                out.append((name, (lambda n, r, a=attn, e=exp, o=op: builder(n, r, a, e, o))))
    return out


REGISTRY = []
REGISTRY += [("transformer", build_transformer)]
REGISTRY += variants("bert", build_bert)
REGISTRY += variants("gpt2", build_gpt2)
REGISTRY += [("gpt2-past", build_gpt2_past), ("t5", build_t5), ("transfo-xl", build_transfo_xl),
             ("xlnet", build_xlnet), ("roberta", build_roberta), ("albert", build_albert),
             ("distilbert", build_distilbert), ("longformer", build_longformer),
             ("linformer", build_linformer), ("reformer", build_reformer), ("electra", build_electra),
             ("deberta-v2", build_deberta), ("swin", build_swin), ("vit", build_vit),
             ("performer", build_performer), ("lamda-standin", build_lamda),
             ("bigbird-full", build_bigbird_full), ("bigbird-block-sparse", build_bigbird_sparse),
             ("sparse-transformer", build_sparse_transformer), ("mistral", build_mistral),
             ("mistral-past", build_mistral_past), ("funnel", build_funnel)]
REGISTRY += variants("llama", build_llama)
REGISTRY += [("llama-past", build_llama_past), ("bart", build_bart)]
ORDER = [n for n, _ in REGISTRY]
NEEDS_TRANSFORMERS4 = {"transfo-xl"}
VARIANT_NAMES = {n for n in ORDER if "-ts-" in n or "-dynamo-" in n}
# The tiny BERT others depend on is produced first.
ORDER.remove("bert-ts-eager-op17")
ORDER.insert(0, "bert-ts-eager-op17")


# ---------------------------------------------------------------- export
def to_torch(d, names):
    return tuple(torch.from_numpy(np.ascontiguousarray(d[n])) for n in names)


def strip_metadata(model):
    """Drop exporter debug metadata (stack traces, source paths) so that the
    file does not depend on where the venv lives."""
    def walk(g):
        for n in g.node:
            del n.metadata_props[:]
            n.doc_string = ""
            for a in n.attribute:
                if a.g is not None and a.HasField("g"):
                    walk(a.g)
                for sg in a.graphs:
                    walk(sg)
        g.doc_string = ""
        for v in list(g.input) + list(g.output) + list(g.value_info):
            del v.metadata_props[:]
        for t in g.initializer:
            del t.metadata_props[:]
        del g.metadata_props[:]
    walk(model.graph)
    for f in model.functions:
        for n in f.node:
            del n.metadata_props[:]
            n.doc_string = ""
    del model.metadata_props[:]
    model.doc_string = ""
    return model


def export(spec, example):
    names = spec.inputs
    onnx_in = [(spec.input_renames or {}).get(n, n) for n in names]
    args = to_torch(example, names)
    if spec.exporter == "ts":
        dyn = {}
        for n, on in zip(names, onnx_in):
            if n in spec.dyn:
                dyn[on] = spec.dyn[n]
        for o in spec.outputs:
            if o in spec.dyn:
                dyn[o] = spec.dyn[o]
        buf = io.BytesIO()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(spec.module, args, buf, dynamo=False, input_names=onnx_in,
                              output_names=spec.outputs, opset_version=spec.opset,
                              dynamic_axes=dyn, do_constant_folding=True)
        model = onnx.load_from_string(buf.getvalue())
    else:
        from torch.export import Dim
        ds = {}
        for n in names:
            if n in spec.dyn:
                ds[n] = {ax: Dim.DYNAMIC for ax in spec.dyn[n]}
            else:
                ds[n] = None
        with torch.no_grad(), warnings.catch_warnings(), \
                contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            prog = torch.onnx.export(spec.module, args, dynamo=True, input_names=onnx_in,
                                     output_names=spec.outputs, opset_version=spec.opset,
                                     dynamic_shapes=ds, external_data=False, optimize=spec.optimize)
        model = prog.model_proto
    strip_metadata(model)
    onnx.checker.check_model(model)
    return model


def ort_session(model_bytes):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def exporter_desc(spec):
    e = "torchscript (dynamo=False)" if spec.exporter == "ts" else \
        f"dynamo (dynamo=True, optimize={spec.optimize})"
    if spec.attn:
        e += f", attn_implementation={spec.attn}"
    if getattr(spec, "exporter_extra", None):
        e += f", {spec.exporter_extra}"
    return e


def write_tensor(path, arr, name):
    t = numpy_helper.from_array(np.ascontiguousarray(arr), name)
    with open(path, "wb") as f:
        f.write(t.SerializeToString())


def short_error(e, limit=400):
    """One-line message of the innermost cause (torch.export wraps the real
    error in a long TorchExportError banner)."""
    root = e
    while root.__cause__ is not None:
        root = root.__cause__
    text = str(root)
    # drop ANSI colour codes and doc links from the exporter banners
    import re
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    text = re.sub(r"https?://\S+", "<link>", text)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    msg = " ".join(lines[:3]).split(" consider using data-dependent")[0]
    caused = [ln for ln in lines if ln.startswith("Caused by:")]
    if caused:
        msg += " " + caused[0]
    msg = f"{type(root).__name__}: " + msg
    return " ".join(msg.split())[:limit]


def attempts_for(name):
    """Exporter configurations tried in order: (exporter, opset, optimize);
    None keeps what the builder chose."""
    if "-dynamo-" in name:
        return [None, ("dynamo", None, False)]
    if "-ts-" in name:
        return [None]
    return [None, ("dynamo", 18, True), ("dynamo", 18, False)]


def describe(override):
    if override is None:
        return "as built"
    exp, op, opt = override
    return f"{exp} opset {op or 'requested'} optimize={opt}" if exp == "dynamo" else exp


def generate_one(name, builder):
    """Export + validate, falling back to other exporter settings; the
    errors of earlier attempts are kept in the notes."""
    errors = []
    for override in attempts_for(name):
        try:
            row, spec = generate_try(name, builder, override)
        except Skip:
            raise
        except Exception as e:
            msg = short_error(e)
            if os.environ.get("CORPUS_DEBUG"):
                traceback.print_exc()
            label = "torchscript exporter" if (override is None and "-dynamo-" not in name) else \
                ("dynamo exporter" if override is None else describe(override))
            errors.append(f"{label}: {msg}")
            continue
        if errors:
            row["notes"] = (row["notes"] + "; " if row["notes"] else "") + \
                "earlier attempts failed: " + " | ".join(errors)
        return row, spec
    raise RuntimeError(" | ".join(errors))


def generate_try(name, builder, override):
    rng = seed_all(name)
    spec = builder(name, rng)
    if override:
        spec.exporter = override[0]
        spec.opset = override[1] or spec.opset
        spec.optimize = override[2]
    return produce(spec, os.path.join(OUT, name)), spec


def produce(spec, d, tol=TOL, max_bytes=MAX_MODEL_BYTES, n_sets=3):
    """Export spec, validate ONNX Runtime against PyTorch on its data sets and
    write model.onnx + test_data_set_N into directory d. Returns the manifest row."""
    name = spec.name
    example = getattr(spec, "example_inputs", None) or spec.sets[min(spec.example, len(spec.sets) - 1)]
    model = export(spec, example)
    data = model.SerializeToString()
    if max_bytes and len(data) > max_bytes:
        raise Skip(f"model is {len(data)} bytes, over the {max_bytes} byte budget")
    sess = ort_session(data)
    graph_inputs = [i.name for i in sess.get_inputs()]
    graph_outputs = [o.name for o in sess.get_outputs()]
    rename = {n: (spec.input_renames or {}).get(n, n) for n in spec.inputs}

    sets = list(spec.sets)
    results = []
    maxdiff = 0.0
    per_set = []
    i = 0
    while i < n_sets and i < len(sets):
        feeds_named = sets[i]
        feeds = {rename[k]: v for k, v in feeds_named.items() if rename[k] in graph_inputs}
        outs = sess.run(None, feeds)
        with torch.no_grad():
            ref = spec.module(*to_torch(feeds_named, spec.inputs))
        if isinstance(ref, torch.Tensor):
            ref = (ref,)
        if len(ref) != len(outs):
            raise RuntimeError(f"torch returned {len(ref)} outputs, onnx {len(outs)}")
        for r, o in zip(ref, outs):
            r = r.detach().numpy()
            if r.shape != o.shape:
                raise RuntimeError(f"data set {i}: shape mismatch torch {r.shape} vs onnx {o.shape}")
            if r.size:
                diff = float(np.max(np.abs(r.astype(np.float64) - o.astype(np.float64))))
                if not np.isfinite(diff):
                    raise RuntimeError(f"data set {i}: non-finite outputs")
                maxdiff = max(maxdiff, diff)
                if os.environ.get("CORPUS_DEBUG"):
                    bad = np.argwhere(np.abs(r - o) > tol)
                    print(f"  set {i} diff {diff:.3g} bad positions {sorted(set(tuple(x[:2]) for x in bad.tolist()))[:20]}")
        results.append((feeds, outs))
        if spec.step_fn is not None and len(sets) < n_sets:
            sets.append(spec.step_fn(feeds_named, outs))
        i += 1
    if maxdiff > tol:
        raise RuntimeError(f"max abs diff vs torch {maxdiff:.3g} > {tol}")

    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(data)
    for k, (feeds, outs) in enumerate(results):
        sd = os.path.join(d, f"test_data_set_{k}")
        os.makedirs(sd)
        for j, gi in enumerate(graph_inputs):
            write_tensor(os.path.join(sd, f"input_{j}.pb"), feeds[gi], gi)
        for j, (go, arr) in enumerate(zip(graph_outputs, outs)):
            write_tensor(os.path.join(sd, f"output_{j}.pb"), arr, go)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    notes = spec.notes
    if opset != spec.opset:
        notes = (notes + "; " if notes else "") + \
            f"opset {spec.opset} requested, exporter produced opset {opset}"
    dropped = [rename[n] for n in spec.inputs if rename[n] not in graph_inputs]
    if dropped:
        notes = (notes + "; " if notes else "") + f"exporter dropped unused inputs: {', '.join(dropped)}"
    return {
        "name": name, "architecture": spec.architecture, "exporter": exporter_desc(spec),
        "opset": str(opset), "file_bytes": str(len(data)), "parameters": str(spec.params),
        "attention_kind": spec.attention_kind, "attention_layers": str(spec.attention_layers),
        "has_past": "yes" if spec.has_past else "no",
        "max_abs_diff_vs_torch": f"{maxdiff:.3g}", "notes": notes,
    }


def read_tsv(path, cols):
    rows = {}
    if os.path.exists(path):
        with open(path) as f:
            lines = f.read().splitlines()
        for line in lines[1:]:
            parts = line.split("\t")
            if len(parts) == len(cols):
                rows[parts[0]] = dict(zip(cols, parts))
    return rows


def write_tsv(path, cols, rows):
    def clean(s):
        return str(s).replace("\t", " ").replace("\n", " ")
    with open(path, "w") as f:
        f.write("\t".join(cols) + "\n")
        for n in ORDER:
            if n in rows:
                f.write("\t".join(clean(rows[n][c]) for c in cols) + "\n")


ARCH_NAMES = {
    "transformer": "torch.nn.Transformer (encoder-decoder)", "bert": "BERT", "gpt2": "GPT-2",
    "t5": "T5", "transfo-xl": "Transformer-XL", "xlnet": "XLNet", "roberta": "RoBERTa",
    "albert": "ALBERT", "distilbert": "DistilBERT", "longformer": "Longformer",
    "linformer": "Linformer", "reformer": "Reformer", "electra": "ELECTRA",
    "deberta-v2": "DeBERTa-v2", "swin": "Swin", "vit": "ViT", "performer": "Performer",
    "lamda-standin": "LaMDA (stand-in)", "bigbird": "BigBird",
    "sparse-transformer": "Sparse Transformer", "mistral": "Mistral",
    "funnel": "Funnel Transformer", "llama": "Llama", "bart": "BART",
}


def guess_arch(name):
    best = max((k for k in ARCH_NAMES if name == k or name.startswith(k + "-")), key=len, default=None)
    return ARCH_NAMES.get(best, name)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="models to (re)generate; default all")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true", help="print tracebacks")
    a = ap.parse_args()
    reg = dict(REGISTRY)
    if a.list:
        print("\n".join(ORDER))
        return 0
    names = a.names or ORDER
    unknown = [n for n in names if n not in reg]
    if unknown:
        ap.error(f"unknown model(s): {', '.join(unknown)}")
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    man_path = os.path.join(OUT, "MANIFEST.tsv")
    skip_path = os.path.join(OUT, "SKIPPED.tsv")
    manifest = read_tsv(man_path, MANIFEST_COLS)
    skipped = read_tsv(skip_path, SKIPPED_COLS)
    failures = 0
    for n in [x for x in ORDER if x in names]:
        t0 = time.time()
        if n in NEEDS_TRANSFORMERS4 and not os.environ.get("CORPUS_CHILD") and \
                int(__import__("transformers").__version__.split(".")[0]) >= 5 and \
                os.path.isdir(transformers4_dir()):
            env = dict(os.environ, CORPUS_CHILD="1",
                       PYTHONPATH=os.pathsep.join(filter(None, [transformers4_dir(),
                                                                os.environ.get("PYTHONPATH")])))
            rc = subprocess.run([sys.executable, os.path.abspath(__file__), n], env=env).returncode
            manifest = read_tsv(man_path, MANIFEST_COLS)
            skipped = read_tsv(skip_path, SKIPPED_COLS)
            if rc != 0 or n not in manifest:
                failures += 1
            continue
        try:
            row, spec = generate_one(n, reg[n])
            manifest[n] = row
            skipped.pop(n, None)
            msg = f"{n}: ok opset={row['opset']} bytes={row['file_bytes']} maxdiff={row['max_abs_diff_vs_torch']}"
        except Exception as e:  # record and go on
            failures += 1
            if a.verbose:
                traceback.print_exc()
            reason = f"{type(e).__name__}: {e}".strip()
            reason = " ".join(reason.split())[:600]
            exp = "torchscript, then dynamo"
            for tag, desc in (("-ts-", "torchscript"), ("-dynamo-", "dynamo")):
                if tag in n:
                    exp = desc
            if isinstance(e, Skip):
                exp = "-"
            skipped[n] = {"name": n, "architecture": guess_arch(n), "exporter": exp or "-",
                          "reason": reason}
            manifest.pop(n, None)
            d = os.path.join(OUT, n)
            if os.path.exists(d):
                shutil.rmtree(d)
            msg = f"{n}: FAILED {reason}"
        msg += f" ({time.time() - t0:.1f}s)"
        print(msg, flush=True)
        with open(PROGRESS, "a") as f:
            f.write(msg + "\n")
        write_tsv(man_path, MANIFEST_COLS, manifest)
        write_tsv(skip_path, SKIPPED_COLS, skipped)
    print(f"{len(names) - failures} generated, {failures} failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
