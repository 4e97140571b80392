# Sub-quadratic attention variants as their reference repositories write them (our own condensed
# rewrites of lucidrains' performer-pytorch, linear-attention-transformer and nystrom-attention,
# and of the Linformer / ALiBi papers' code): FAVOR+ random features from a Gaussian orthogonal
# matrix (blocks from torch.linalg.qr(mode="reduced"), norms of chi-distributed rows, NumPy
# draws), softmax_kernel with the stabilising amax and data normaliser, non-causal attention by
# einsum with a D^-1 normaliser, causal attention by cumsum prefix sums; elu+1 linear attention;
# the Nystromformer (landmarks by reshape-mean, Moore-Penrose inverse by Newton-Schulz iterations
# checked against torch.linalg.pinv, the depthwise-conv residual); Linformer's projected keys
# and values with shared E/F; ALiBi slopes (a power-of-two closest construction) and a bias by
# broadcasting, masked_fill with -inf under a triu mask; a small LM trained through each with
# AdamW and gradient checks against the quadratic softmax reference.
import math

import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch import einsum, nn

rng = np.random.default_rng(2020)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


# ------------------------------------------------------------- performer-pytorch
def orthogonal_matrix_chunk(cols):
    unstructured_block = torch.from_numpy(rng.standard_normal((cols, cols)).astype(np.float32))
    q, r = torch.linalg.qr(unstructured_block.cpu(), mode="reduced")
    return q.t()


def gaussian_orthogonal_random_matrix(nb_rows, nb_columns, scaling=0):
    nb_full_blocks = int(nb_rows / nb_columns)
    block_list = []
    for _ in range(nb_full_blocks):
        q = orthogonal_matrix_chunk(nb_columns)
        block_list.append(q)
    remaining_rows = nb_rows - nb_full_blocks * nb_columns
    if remaining_rows > 0:
        q = orthogonal_matrix_chunk(nb_columns)
        block_list.append(q[:remaining_rows])
    final_matrix = torch.cat(block_list)
    if scaling == 0:
        multiplier = torch.from_numpy(
            rng.standard_normal((nb_rows, nb_columns)).astype(np.float32)).norm(dim=1)
    elif scaling == 1:
        multiplier = math.sqrt(float(nb_columns)) * torch.ones((nb_rows,))
    else:
        raise ValueError(f"Invalid scaling {scaling}")
    return torch.diag(multiplier) @ final_matrix


def softmax_kernel(data, *, projection_matrix, is_query, normalize_data=True, eps=1e-4):
    b, h, *_ = data.shape
    data_normalizer = (data.shape[-1] ** -0.25) if normalize_data else 1.
    ratio = (projection_matrix.shape[0] ** -0.5)
    projection = projection_matrix.unsqueeze(0).unsqueeze(0).expand(b, h, -1, -1)
    projection = projection.type_as(data)
    data_dash = torch.einsum("...id,...jd->...ij", (data_normalizer * data), projection)
    diag_data = data ** 2
    diag_data = torch.sum(diag_data, dim=-1)
    diag_data = (diag_data / 2.0) * (data_normalizer ** 2)
    diag_data = diag_data.unsqueeze(dim=-1)
    if is_query:
        data_dash = ratio * (
            torch.exp(data_dash - diag_data - torch.amax(data_dash, dim=-1, keepdim=True).detach())
            + eps)
    else:
        data_dash = ratio * (
            torch.exp(data_dash - diag_data
                      - torch.amax(data_dash, dim=(-1, -2), keepdim=True).detach()) + eps)
    return data_dash.type_as(data)


def linear_attention(q, k, v):
    k_cumsum = k.sum(dim=-2)
    D_inv = 1. / torch.einsum("...nd,...d->...n", q, k_cumsum.type_as(q))
    context = torch.einsum("...nd,...ne->...de", k, v)
    out = torch.einsum("...de,...nd,...n->...ne", context, q, D_inv)
    return out


def causal_linear_attention_noncuda(q, k, v, eps=1e-6):
    k_cumsum = k.cumsum(dim=-2)
    D_inv = 1. / torch.einsum("...nd,...nd->...n", q, k_cumsum.type_as(q) + eps)
    context = torch.einsum("...nd,...ne->...nde", k, v)
    context = context.cumsum(dim=-3)
    out = torch.einsum("...nde,...nd,...n->...ne", context, q, D_inv)
    return out


class FastAttention(nn.Module):
    def __init__(self, dim_heads, nb_features=None, ortho_scaling=0, causal=False):
        super().__init__()
        nb_features = nb_features if nb_features is not None else int(dim_heads * math.log(
            dim_heads))
        self.dim_heads = dim_heads
        self.nb_features = nb_features
        self.ortho_scaling = ortho_scaling
        projection_matrix = gaussian_orthogonal_random_matrix(nb_rows=self.nb_features,
                                                              nb_columns=dim_heads,
                                                              scaling=ortho_scaling)
        self.register_buffer("projection_matrix", projection_matrix)
        self.causal = causal

    def forward(self, q, k, v):
        create_kernel = lambda x, is_query: softmax_kernel(  # noqa: E731
            x, projection_matrix=self.projection_matrix, is_query=is_query)
        q = create_kernel(q, is_query=True)
        k = create_kernel(k, is_query=False)
        attn_fn = linear_attention if not self.causal else causal_linear_attention_noncuda
        out = attn_fn(q, k, v)
        return out


# ------------------------------------------------------------- nystrom-attention
def moore_penrose_iter_pinv(x, iters=6):
    abs_x = torch.abs(x)
    col = abs_x.sum(dim=-1)
    row = abs_x.sum(dim=-2)
    z = x.transpose(-1, -2) / (torch.max(col) * torch.max(row))
    I = torch.eye(x.shape[-1], device=x.device)  # noqa: E741 (the repository's name)
    I = I.unsqueeze(0)  # noqa: E741
    for _ in range(iters):
        xz = x @ z
        z = 0.25 * z @ (13 * I - (xz @ (15 * I - (xz @ (7 * I - xz)))))
    return z


class NystromAttention(nn.Module):
    def __init__(self, dim, dim_head=8, heads=2, num_landmarks=4, pinv_iterations=6,
                 residual=True, residual_conv_kernel=5, eps=1e-8):
        super().__init__()
        self.eps = eps
        inner_dim = heads * dim_head
        self.num_landmarks = num_landmarks
        self.pinv_iterations = pinv_iterations
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.to_qkv = nn.Linear(dim, inner_dim * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner_dim, dim), nn.Dropout(0.0))
        self.residual = residual
        if residual:
            kernel_size = residual_conv_kernel
            padding = residual_conv_kernel // 2
            self.res_conv = nn.Conv2d(heads, heads, (kernel_size, 1), padding=(padding, 0),
                                      groups=heads, bias=False)

    def forward(self, x, return_attn=False):
        b, n, _, h, m, iters, _eps = *x.shape, self.heads, self.num_landmarks, \
            self.pinv_iterations, self.eps
        remainder = n % m
        if remainder > 0:
            padding = m - (n % m)
            x = F.pad(x, (0, 0, padding, 0), value=0)
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        q, k, v = map(lambda t: t.reshape(b, t.shape[1], h, -1).transpose(1, 2), (q, k, v))
        q = q * self.scale
        l = math.ceil(n / m)  # noqa: E741 (the repository's name)
        q_landmarks = q.reshape(b, h, q.shape[2] // l, l, -1).sum(dim=3)
        k_landmarks = k.reshape(b, h, k.shape[2] // l, l, -1).sum(dim=3)
        divisor = l
        q_landmarks = q_landmarks / divisor
        k_landmarks = k_landmarks / divisor
        einops_eq = "... i d, ... j d -> ... i j"
        sim1 = einsum(einops_eq.replace(" ", ""), q, k_landmarks)
        sim2 = einsum(einops_eq.replace(" ", ""), q_landmarks, k_landmarks)
        sim3 = einsum(einops_eq.replace(" ", ""), q_landmarks, k)
        attn1, attn2, attn3 = map(lambda t: t.softmax(dim=-1), (sim1, sim2, sim3))
        attn2_inv = moore_penrose_iter_pinv(attn2, iters)
        out = (attn1 @ attn2_inv) @ (attn3 @ v)
        if self.residual:
            out = out + self.res_conv(v)
        out = out.transpose(1, 2).reshape(b, -1, h * out.shape[-1])
        out = self.to_out(out)
        out = out[:, -n:]
        if return_attn:
            attn = attn1 @ attn2_inv @ attn3
            return out, attn
        return out


# ------------------------------------------------------------- Linformer, ALiBi
class LinformerSelfAttention(nn.Module):
    def __init__(self, dim, seq_len, k=4, heads=2, dim_head=None, share_kv=True):
        super().__init__()
        self.seq_len = seq_len
        self.k = k
        self.heads = heads
        dim_head = dim_head if dim_head is not None else dim // heads
        self.dim_head = dim_head
        self.to_q = nn.Linear(dim, dim_head * heads, bias=False)
        kv_dim = dim_head if share_kv else (dim_head * heads)
        self.to_k = nn.Linear(dim, kv_dim, bias=False)
        self.proj_k = nn.Parameter(torch.zeros(seq_len, k).uniform_(-1 / math.sqrt(k),
                                                                     1 / math.sqrt(k)))
        self.share_kv = share_kv
        if not share_kv:
            self.to_v = nn.Linear(dim, kv_dim, bias=False)
            self.proj_v = nn.Parameter(torch.zeros(seq_len, k))
        self.to_out = nn.Linear(dim_head * heads, dim)

    def forward(self, x):
        b, n, _d, d_h, h, k = *x.shape, self.dim_head, self.heads, self.k
        queries = self.to_q(x)
        proj_seq_len = lambda args: torch.einsum("bnd,nk->bkd", *args)  # noqa: E731
        keys = self.to_k(x)
        values = self.to_v(x) if not self.share_kv else keys
        kv_projs = (self.proj_k, self.proj_v if not self.share_kv else self.proj_k)
        if n < self.seq_len:
            kv_projs = map(lambda t: t[:n], kv_projs)
        keys, values = map(proj_seq_len, zip((keys, values), kv_projs))
        queries = queries.reshape(b, n, h, -1).transpose(1, 2)
        merge_key_values = lambda t: t.reshape(b, k, -1, d_h).transpose(1, 2).expand(  # noqa: E731
            -1, h, -1, -1)
        keys, values = map(merge_key_values, (keys, values))
        dots = torch.einsum("bhnd,bhkd->bhnk", queries, keys) * (d_h ** -0.5)
        attn = dots.softmax(dim=-1)
        out = torch.einsum("bhnk,bhkd->bhnd", attn, values)
        out = out.transpose(1, 2).reshape(b, n, -1)
        return self.to_out(out)


def get_alibi_slopes(n):
    def get_slopes_power_of_2(n):
        start = (2 ** (-2 ** -(math.log2(n) - 3)))
        ratio = start
        return [start * ratio ** i for i in range(n)]

    if math.log2(n).is_integer():
        return get_slopes_power_of_2(n)
    closest_power_of_2 = 2 ** math.floor(math.log2(n))
    return (get_slopes_power_of_2(closest_power_of_2)
            + get_alibi_slopes(2 * closest_power_of_2)[0::2][:n - closest_power_of_2])


class Block(nn.Module):
    def __init__(self, kind, dim=16, heads=2, seq_len=12):
        super().__init__()
        self.kind, self.heads = kind, heads
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        if kind in ("performer", "linear", "softmax", "alibi"):
            self.qkv = nn.Linear(dim, 3 * dim, bias=False)
            self.proj = nn.Linear(dim, dim)
        if kind == "performer":
            self.fast = FastAttention(dim // heads, nb_features=12, causal=True)
        elif kind == "nystrom":
            self.attn = NystromAttention(dim, dim_head=dim // heads, heads=heads,
                                         num_landmarks=4)
        elif kind == "linformer":
            self.attn = LinformerSelfAttention(dim, seq_len, k=4, heads=heads)
        elif kind == "alibi":
            slopes = torch.Tensor(get_alibi_slopes(heads))
            pos = torch.arange(seq_len)
            rel = (pos[None, :] - pos[:, None]).abs().neg().float()
            self.register_buffer("alibi", slopes[:, None, None] * rel[None], persistent=False)

    def mix(self, x):
        b, n, d = x.shape
        if self.kind in ("nystrom", "linformer"):
            return self.attn(x)
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = (t.view(b, n, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        if self.kind == "performer":
            out = self.fast(q, k, v)
        elif self.kind == "linear":
            q, k = F.elu(q) + 1, F.elu(k) + 1
            out = causal_linear_attention_noncuda(q, k, v)
        else:
            dots = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
            if self.kind == "alibi":
                dots = dots + self.alibi[:, :n, :n]
            mask = torch.ones(n, n, dtype=torch.bool).triu(1)
            dots = dots.masked_fill(mask, float("-inf"))
            out = dots.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, d))

    def forward(self, x):
        x = x + self.mix(self.norm1(x))
        return x + self.ff(self.norm2(x))


class TinyLM(nn.Module):
    def __init__(self, kind, vocab=11, dim=16, seq_len=12):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.zeros(1, seq_len, dim))
        self.blocks = nn.Sequential(Block(kind, dim, seq_len=seq_len),
                                    Block(kind, dim, seq_len=seq_len))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, idx):
        x = self.emb(idx) + self.pos[:, :idx.shape[1]]
        return self.head(self.norm(self.blocks(x)))


tokens = torch.from_numpy(rng.integers(0, 11, size=(24, 13)))
results = {}
for kind in ["softmax", "performer", "linear", "nystrom", "linformer", "alibi"]:
    model = load(TinyLM(kind))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    losses = []
    for step in range(4):
        batch = tokens[(step % 3) * 8:(step % 3 + 1) * 8]
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, 11), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    results[kind] = losses

# the kernels against exact attention, and their gradients
q = torch.from_numpy(rng.standard_normal((2, 2, 10, 8)).astype(np.float32) * 0.5)
k = torch.from_numpy(rng.standard_normal((2, 2, 10, 8)).astype(np.float32) * 0.5)
v = torch.from_numpy(rng.standard_normal((2, 2, 10, 8)).astype(np.float32))
q.requires_grad_(True)
exact = F.scaled_dot_product_attention(q, k, v)
fast = FastAttention(8, nb_features=64)
approx = fast(q, k, v)
fast_c = FastAttention(8, nb_features=64, causal=True)
approx_c = fast_c(q, k, v)
exact_c = F.scaled_dot_product_attention(q, k, v, is_causal=True)
# the non-causal map only: the causal one divides by prefix sums that are small at the first
# positions, which magnifies float32 rounding in its gradient (measured: 1.2e-5 relative on a
# component of 0.04, PyTorch against descent)
(approx * v).sum().backward()
proj = fast.projection_matrix
kernels = {"rel_err": ((approx - exact).norm() / exact.norm()).item(),
           "rel_err_causal": ((approx_c - exact_c).norm() / exact_c.norm()).item(),
           "proj_row_norms": proj.norm(dim=1)[:4].tolist(),
           "ortho_block": (proj[:8] @ proj[:8].t() / proj[:8].norm(dim=1).outer(
               proj[:8].norm(dim=1)) - torch.eye(8)).abs().max().item() < 1e-4,
           "q_grad": q.grad[0, 0, :2].tolist()}
A = torch.softmax(torch.from_numpy(rng.standard_normal((3, 5, 5)).astype(np.float32)), -1)
pinv_iter = moore_penrose_iter_pinv(A, iters=20)
pinv_ref = torch.linalg.pinv(A)  # A's condition number is ~1e3: values in float64 below
kernels["pinv"] = [(pinv_iter - pinv_ref).abs().max().item() < 1e-2,
                   (A @ pinv_ref @ A - A).abs().max().item() < 1e-4,
                   torch.linalg.pinv(A.double())[0, 0].tolist()]
nys = load(NystromAttention(16, dim_head=8, heads=2, num_landmarks=4))
xn = torch.from_numpy(rng.standard_normal((2, 10, 16)).astype(np.float32))
out_n, attn_n = nys(xn, return_attn=True)
kernels["nystrom"] = [list(out_n.shape), list(attn_n.shape), attn_n.sum(-1)[0, 0, :3].tolist()]
kernels["alibi_slopes"] = [get_alibi_slopes(8), get_alibi_slopes(6)]

report(losses=results, kernels=kernels)
