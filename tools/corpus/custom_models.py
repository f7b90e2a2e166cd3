"""Small, self-contained PyTorch modules for architectures that `transformers`
does not implement (or that are not Hugging Face models at all).

Each module follows the defining paper closely enough to produce the same
attention structure in the exported ONNX graph; none of them is meant to be
trained. All take integer token ids plus an int64 attention mask (1 = real
token, 0 = right padding) and return float tensors.
"""

import math

import torch
from torch import nn
import torch.nn.functional as F


class VanillaSeq2Seq(nn.Module):
    """torch.nn.Transformer (Vaswani et al. 2017) with token embeddings,
    learned positions and an output projection: encoder self-attention,
    causal decoder self-attention and decoder-encoder cross-attention."""

    def __init__(self, vocab=100, d_model=32, nhead=2, layers=2, ff=64, max_len=32):
        super().__init__()
        self.src_emb = nn.Embedding(vocab, d_model)
        self.tgt_emb = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        self.transformer = nn.Transformer(
            d_model=d_model, nhead=nhead, num_encoder_layers=layers,
            num_decoder_layers=layers, dim_feedforward=ff, dropout=0.0,
            batch_first=True)
        # no nested-tensor sparsity path: it inspects mask values (data-dependent)
        self.transformer.encoder.enable_nested_tensor = False
        self.transformer.encoder.use_nested_tensor = False
        self.out = nn.Linear(d_model, vocab)

    def forward(self, src_ids, src_mask, tgt_ids, tgt_mask):
        s = src_ids.shape[1]
        t = tgt_ids.shape[1]
        src = self.src_emb(src_ids) + self.pos(torch.arange(s, device=src_ids.device))
        tgt = self.tgt_emb(tgt_ids) + self.pos(torch.arange(t, device=tgt_ids.device))
        causal = torch.ones(t, t, dtype=torch.bool, device=tgt_ids.device).triu(1)
        src_kpm = src_mask == 0
        tgt_kpm = tgt_mask == 0
        y = self.transformer(src, tgt, tgt_mask=causal, src_is_causal=False, tgt_is_causal=True,
                             src_key_padding_mask=src_kpm,
                             tgt_key_padding_mask=tgt_kpm,
                             memory_key_padding_mask=src_kpm)
        return self.out(y)


def _split(x, h):
    b, n, d = x.shape
    return x.reshape(b, n, h, d // h).transpose(1, 2)


def _merge(x):
    b, h, n, dh = x.shape
    return x.transpose(1, 2).reshape(b, n, h * dh)


class _FFN(nn.Module):
    def __init__(self, d, ff):
        super().__init__()
        self.fc1 = nn.Linear(d, ff)
        self.fc2 = nn.Linear(ff, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


# ---------------------------------------------------------------- Linformer
class LinformerSelfAttention(nn.Module):
    """Linformer (Wang et al. 2020, eq. 7): keys and values are projected along
    the sequence axis by learned E, F in R^{n x k} before softmax attention, so
    the attention matrix is n x k (low rank). For n shorter than the maximum
    length the first n rows of E, F are used (as in the reference
    implementations); padded key/value rows are zeroed before projection."""

    def __init__(self, d, heads, max_len, k):
        super().__init__()
        self.h = heads
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.o = nn.Linear(d, d)
        self.E = nn.Parameter(torch.randn(max_len, k) / math.sqrt(k))
        self.F = nn.Parameter(torch.randn(max_len, k) / math.sqrt(k))

    def forward(self, x, mask):
        n = x.shape[1]
        m = mask.unsqueeze(-1)
        q = self.q(x)
        k = self.k(x) * m
        v = self.v(x) * m
        k = torch.einsum("bnd,nk->bkd", k, self.E[:n])
        v = torch.einsum("bnd,nk->bkd", v, self.F[:n])
        q, k, v = _split(q, self.h), _split(k, self.h), _split(v, self.h)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
        return self.o(_merge(att @ v))


class LinformerEncoder(nn.Module):
    def __init__(self, vocab=500, d=64, heads=2, layers=2, ff=128, max_len=32, k=8):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_len, d)
        self.attn = nn.ModuleList(LinformerSelfAttention(d, heads, max_len, k) for _ in range(layers))
        self.ffn = nn.ModuleList(_FFN(d, ff) for _ in range(layers))
        self.ln1 = nn.ModuleList(nn.LayerNorm(d) for _ in range(layers))
        self.ln2 = nn.ModuleList(nn.LayerNorm(d) for _ in range(layers))

    def forward(self, input_ids, attention_mask):
        n = input_ids.shape[1]
        mask = attention_mask.to(torch.float32)
        x = self.emb(input_ids) + self.pos(torch.arange(n, device=input_ids.device))
        for attn, ffn, ln1, ln2 in zip(self.attn, self.ffn, self.ln1, self.ln2):
            x = ln1(x + attn(x, mask))
            x = ln2(x + ffn(x))
        return x


# ---------------------------------------------------------------- Performer
def _orthogonal_features(m, d, gen):
    """Orthogonal random features (Choromanski et al. 2021, sec. 4.2):
    blocks of orthogonalised Gaussian rows, rescaled by chi-distributed norms."""
    blocks = []
    for _ in range(math.ceil(m / d)):
        g = torch.randn(d, d, generator=gen)
        q, _ = torch.linalg.qr(g)
        blocks.append(q.T)
    w = torch.cat(blocks, 0)[:m]
    norms = torch.randn(m, d, generator=gen).norm(dim=1)
    return w * norms.unsqueeze(1)


class PerformerSelfAttention(nn.Module):
    """FAVOR+ (Choromanski et al. 2021): softmax kernel approximated with
    positive random features phi(x) = exp(w.x - |x|^2/2) / sqrt(m); attention
    is computed as phi(Q) (phi(K)^T V) normalised by phi(Q) (phi(K)^T 1), linear
    in sequence length (bidirectional variant). The random projection is a
    fixed buffer (resampling only happens during training)."""

    def __init__(self, d, heads, nb_features, gen):
        super().__init__()
        self.h = heads
        self.dh = d // heads
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.o = nn.Linear(d, d)
        self.register_buffer("proj", _orthogonal_features(nb_features, self.dh, gen))

    def _features(self, x, is_query):
        m = self.proj.shape[0]
        dn = self.dh ** -0.25
        xd = (x * dn) @ self.proj.t()
        diag = (x * x).sum(-1, keepdim=True) * 0.5 * dn * dn
        if is_query:
            stab = xd.amax(dim=-1, keepdim=True)
        else:
            stab = xd.amax(dim=(-1, -2), keepdim=True)
        return (torch.exp(xd - diag - stab) + 1e-4) / math.sqrt(m)

    def forward(self, x, mask):
        q, k, v = _split(self.q(x), self.h), _split(self.k(x), self.h), _split(self.v(x), self.h)
        qf = self._features(q, True)
        kf = self._features(k, False) * mask[:, None, :, None]
        kv = kf.transpose(-1, -2) @ v                       # [b,h,m,dh]
        z = qf @ kf.sum(dim=2).unsqueeze(-1)                # [b,h,n,1]
        out = (qf @ kv) / z
        return self.o(_merge(out))


class PerformerEncoder(nn.Module):
    def __init__(self, vocab=500, d=64, heads=2, layers=2, ff=128, max_len=64, nb_features=16, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_len, d)
        self.attn = nn.ModuleList(PerformerSelfAttention(d, heads, nb_features, gen) for _ in range(layers))
        self.ffn = nn.ModuleList(_FFN(d, ff) for _ in range(layers))
        self.ln1 = nn.ModuleList(nn.LayerNorm(d) for _ in range(layers))
        self.ln2 = nn.ModuleList(nn.LayerNorm(d) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)

    def forward(self, input_ids, attention_mask):
        n = input_ids.shape[1]
        mask = attention_mask.to(torch.float32)
        x = self.emb(input_ids) + self.pos(torch.arange(n, device=input_ids.device))
        for attn, ffn, ln1, ln2 in zip(self.attn, self.ffn, self.ln1, self.ln2):
            x = x + attn(ln1(x), mask)      # pre-LN, as in the Performer code base
            x = x + ffn(ln2(x))
        return self.ln_f(x)


# ------------------------------------------------------- Sparse Transformer
class SparseSelfAttention(nn.Module):
    """Factorised strided attention (Child et al. 2019, sec. 4.2-4.3):
    head group A attends to the previous `stride` positions (A_i = {j: i-l < j <= i}),
    head group B to every stride-th earlier position (B_i = {j: (i-j) mod l = 0}).
    Implemented as masks on dense attention, which is what the exported graph
    of a mask-based implementation looks like (the paper's kernels are GPU
    block-sparse)."""

    def __init__(self, d, heads, stride):
        super().__init__()
        assert heads % 2 == 0
        self.h = heads
        self.stride = stride
        self.qkv = nn.Linear(d, 3 * d)
        self.o = nn.Linear(d, d)

    def forward(self, x, key_pad):
        n = x.shape[1]
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = _split(q, self.h), _split(k, self.h), _split(v, self.h)
        i = torch.arange(n, device=x.device).unsqueeze(1)
        j = torch.arange(n, device=x.device).unsqueeze(0)
        causal = j <= i
        local = causal & (i - j < self.stride)
        strided = causal & (torch.remainder(i - j, self.stride) == 0)
        g = self.h // 2
        allowed = torch.cat([local.unsqueeze(0).expand(g, n, n),
                             strided.unsqueeze(0).expand(g, n, n)], 0)      # [h,n,n]
        allowed = allowed.unsqueeze(0) & key_pad[:, None, None, :]          # [b,h,n,n]
        s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        s = s.masked_fill(~allowed, torch.finfo(s.dtype).min)
        return self.o(_merge(torch.softmax(s, dim=-1) @ v))


class SparseTransformerLM(nn.Module):
    def __init__(self, vocab=500, d=64, heads=2, layers=2, ff=128, max_len=64, stride=4):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_len, d)
        self.attn = nn.ModuleList(SparseSelfAttention(d, heads, stride) for _ in range(layers))
        self.ffn = nn.ModuleList(_FFN(d, ff) for _ in range(layers))
        self.ln1 = nn.ModuleList(nn.LayerNorm(d) for _ in range(layers))
        self.ln2 = nn.ModuleList(nn.LayerNorm(d) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, input_ids, attention_mask):
        n = input_ids.shape[1]
        key_pad = attention_mask != 0
        x = self.emb(input_ids) + self.pos(torch.arange(n, device=input_ids.device))
        for attn, ffn, ln1, ln2 in zip(self.attn, self.ffn, self.ln1, self.ln2):
            x = x + attn(ln1(x), key_pad)   # pre-activation residual blocks (paper sec. 5.2)
            x = x + ffn(ln2(x))
        return self.head(self.ln_f(x))
