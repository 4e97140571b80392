"""The bad calls of tests/test_errors_s13.py: each case runs with `m` bound to torch and to
descent. Torch raises (or warns) on every one; descent must raise a subclass of torch's class
(or warn the same category), and its message must hold each fragment listed: the op's name and
the shapes or offending values, in descent's spelling ((2, 3), float32).
"""

# ruff: noqa: E501

def _backward_twice(m):
    x = m.ones(3, requires_grad=True)
    y = (x.exp()).sum()
    y.backward()
    y.backward()

def _inplace_saved(m):
    x = m.ones(3, requires_grad=True)
    y = x * 2
    z = y.exp()
    z.mul_(2)  # exp saves its output
    z.sum().backward()

def _inplace_saved2(m):
    x = m.ones(3, requires_grad=True)
    y = x * 2
    z = y * y
    y.add_(1)
    z.sum().backward()

def _sd_missing(m):
    a = m.nn.Linear(2, 3)
    sd = a.state_dict()
    del sd["bias"]
    a.load_state_dict(sd)

def _sd_unexpected(m):
    a = m.nn.Linear(2, 3)
    sd = dict(a.state_dict())
    sd["extra"] = m.zeros(1)
    a.load_state_dict(sd)

def _sd_shape(m):
    a = m.nn.Linear(2, 3)
    b = m.nn.Linear(4, 3)
    a.load_state_dict(b.state_dict())

def _opt_nonleaf(m):
    w = m.ones(3, requires_grad=True)
    m.optim.SGD([w * 2], lr=0.1)

def _lstm(m):
    lstm = m.nn.LSTM(4, 5)
    lstm(m.zeros(2, 3, 6))

def _gru(m):
    g = m.nn.GRU(4, 5)
    g(m.zeros(2, 3, 6))

def _mha(m):
    a = m.nn.MultiheadAttention(8, 2)
    x = m.zeros(3, 2, 6)
    a(x, x, x)

def _mse(m):
    m.nn.functional.mse_loss(m.zeros(3, 1), m.zeros(3))

def _mse_bad(m):
    m.nn.functional.mse_loss(m.zeros(3, 2), m.zeros(4))

def _reqgrad_int_attr(m):
    x = m.arange(3)
    x.requires_grad = True

def _reqgrad_int_(m):
    m.arange(3).requires_grad_()

def _linear(m):
    m.nn.Linear(4, 3)(m.zeros(2, 5))

def _conv_ch(m):
    m.nn.Conv2d(3, 4, 3)(m.zeros(1, 2, 8, 8))

def _conv_2d(m):
    m.nn.Conv2d(3, 4, 3)(m.zeros(8, 8))

def _conv_5d(m):
    m.nn.Conv2d(3, 4, 3)(m.zeros(1, 1, 3, 8, 8))

def _conv_small(m):
    m.nn.Conv2d(3, 4, 5)(m.zeros(1, 3, 3, 3))

def _ln(m):
    m.nn.LayerNorm(5)(m.zeros(2, 4))

def _bn(m):
    m.nn.BatchNorm2d(3)(m.zeros(2, 4, 5, 5))

def _bn1d(m):
    m.nn.BatchNorm1d(3)(m.zeros(2, 4))

def _bn_dim(m):
    m.nn.BatchNorm2d(3)(m.zeros(2, 3, 5))

def _emb(m):
    m.nn.Embedding(5, 2)(m.tensor([1, 5]))

def _emb_neg(m):
    m.nn.Embedding(5, 2)(m.tensor([-1]))

def _emb_float(m):
    m.nn.Embedding(5, 2)(m.tensor([1.0]))

def _ce_target(m):
    m.nn.functional.cross_entropy(m.zeros(2, 3), m.tensor([0, 3]))

def _ce_neg(m):
    m.nn.functional.cross_entropy(m.zeros(2, 3), m.tensor([0, -2]))

def _ce_shape(m):
    m.nn.functional.cross_entropy(m.zeros(2, 3), m.tensor([0, 1, 2]))

def _ce_float_shape(m):
    m.nn.functional.cross_entropy(m.zeros(2, 3), m.zeros(2, 4))

def _nll_target(m):
    m.nn.functional.nll_loss(m.zeros(2, 3), m.tensor([0, 3]))

def _bce_shape(m):
    m.nn.functional.binary_cross_entropy(m.full((2, 3), 0.5), m.zeros(3, 2))

def _bce_range(m):
    m.nn.functional.binary_cross_entropy(m.full((2,), 2.0), m.zeros(2))

def _backward_nonscalar(m):
    x = m.ones(3, requires_grad=True)
    (x * 2).backward()

def _backward_noreq(m):
    m.ones(3).sum().backward()

def _grad_shape(m):
    x = m.ones(3, requires_grad=True)
    (x * 2).backward(m.ones(4))

def _view_noncontig(m):
    m.zeros(3, 4).t().view(12)

def _index_oob(m):
    m.zeros(3, 4)[3]

def _index_oob2(m):
    m.zeros(3, 4)[:, 4]

def _index_too_many(m):
    m.zeros(3, 4)[0, 0, 0]

def _index_tensor_oob(m):
    m.zeros(3, 4)[m.tensor([0, 5])]

def _index_bool_shape(m):
    m.zeros(3, 4)[m.tensor([True, False])]

def _setitem_shape(m):
    x = m.zeros(3, 4)
    x[0] = m.ones(5)

def _opt_lr(m):
    m.optim.SGD([m.ones(1, requires_grad=True)], lr=-1)

def _adam_beta(m):
    m.optim.Adam([m.ones(1, requires_grad=True)], betas=(1.5, 0.9))

def _inplace_leaf(m):
    x = m.ones(3, requires_grad=True)
    x.add_(1)

def _inplace_broadcast(m):
    x = m.ones(3)
    x.add_(m.ones(2, 3))

def _grad_nonscalar(m):
    x = m.ones(3, requires_grad=True)
    m.autograd.grad(x * 2, x)

def _grad_unused(m):
    x = m.ones(3, requires_grad=True)
    y = m.ones(3, requires_grad=True)
    m.autograd.grad((x * 2).sum(), y)

def _sequential_wrong(m):
    net = m.nn.Sequential(m.nn.Linear(4, 8), m.nn.ReLU(), m.nn.Linear(6, 2))
    net(m.zeros(2, 4))

def _softmax_dim(m):
    m.softmax(m.zeros(2, 3), dim=2)

def _log_softmax_dim(m):
    m.nn.functional.log_softmax(m.zeros(2, 3), dim=-3)

def _dropout_p(m):
    m.nn.functional.dropout(m.zeros(3), p=1.5)

def _dropout_mod(m):
    m.nn.Dropout(p=-0.1)

def _pool(m):
    m.nn.functional.max_pool2d(m.zeros(1, 1, 2, 2), 3)

def _unfold(m):
    m.zeros(5).unfold(0, 6, 1)

def _chunk0(m):
    m.zeros(5).chunk(0)

def _split_sizes(m):
    m.zeros(5).split([2, 2])

def _repeat_few(m):
    m.zeros(2, 3).repeat(2)

def _flatten(m):
    m.zeros(2, 3).flatten(2)

def _unsqueeze(m):
    m.zeros(2, 3).unsqueeze(4)

def _sum_dim(m):
    m.zeros(2, 3).sum(dim=2)

def _mean_int(m):
    m.arange(3).mean()

def _argmax_dim(m):
    m.zeros(2, 3).argmax(dim=3)

def _topk(m):
    m.zeros(3).topk(4)

def _multinomial(m):
    m.multinomial(m.tensor([0.5, 0.5]), 3)

def _multinomial_neg(m):
    m.multinomial(m.tensor([-0.5, 0.5]), 1)

def _item(m):
    m.zeros(2).item()

def _bool(m):
    bool(m.zeros(2))

def _numpy_grad(m):
    m.ones(2, requires_grad=True).numpy()

def _cat_dtype_dim(m):
    m.cat([m.zeros(2, 3), m.zeros(2, 3)], dim=2)

def _linspace(m):
    m.linspace(0, 1, -1)

def _full_bad(m):
    m.zeros(2, 3).new_zeros(-1)

def _layer_norm_f(m):
    m.nn.functional.layer_norm(m.zeros(2, 4), (5,))

def _group_norm(m):
    m.nn.GroupNorm(3, 4)

def _group_norm_ch(m):
    m.nn.GroupNorm(2, 4)(m.zeros(2, 6, 3))

def _transformer_layer(m):
    m.nn.TransformerEncoderLayer(8, 3)

def _mha_heads(m):
    m.nn.MultiheadAttention(8, 3)

def _sdpa(m):
    m.nn.functional.scaled_dot_product_attention(m.zeros(2, 3, 4), m.zeros(2, 3, 5), m.zeros(2, 3, 5))

def _pad(m):
    m.nn.functional.pad(m.zeros(2, 3), (1, 2, 3))

def _interp(m):
    m.nn.functional.interpolate(m.zeros(1, 1, 4), size=(2, 2))

def _one_hot(m):
    m.nn.functional.one_hot(m.tensor([0, 3]), 3)

def _clip_grad(m):
    m.nn.utils.clip_grad_norm_([m.ones(2, requires_grad=True)], max_norm=1.0, norm_type="x")

def _conv_groups(m):
    m.nn.Conv2d(3, 4, 3, groups=2)

def _conv_f_weight(m):
    m.nn.functional.conv2d(m.zeros(1, 3, 5, 5), m.zeros(4, 2, 3, 3))

def _conv1d_ch(m):
    m.nn.Conv1d(3, 4, 3)(m.zeros(1, 2, 8))

def _rnn_h0(m):
    r = m.nn.LSTM(4, 5)
    r(m.zeros(2, 3, 4), (m.zeros(1, 3, 6), m.zeros(1, 3, 5)))

def _lstm_2d_in(m):
    r = m.nn.LSTM(4, 5)
    r(m.zeros(3, 6))

def _mha_kv(m):
    a = m.nn.MultiheadAttention(8, 2)
    a(m.zeros(3, 2, 8), m.zeros(4, 2, 8), m.zeros(5, 2, 8))

def _kl_shape(m):
    m.nn.functional.kl_div(m.zeros(2, 3), m.zeros(3, 2), reduction="batchmean")

def _l1_bad(m):
    m.nn.functional.l1_loss(m.zeros(3, 2), m.zeros(4))

def _reduction_bad(m):
    m.nn.functional.mse_loss(m.zeros(3), m.zeros(3), reduction="avg")

def _ce_reduction_bad(m):
    m.nn.functional.cross_entropy(m.zeros(2, 3), m.tensor([0, 1]), reduction="avg")

def _ce_int_input(m):
    m.nn.functional.cross_entropy(m.zeros(2, 3, dtype=m.int64), m.tensor([0, 1]))

def _module_missing_forward(m):
    class M(m.nn.Module):
        pass
    M()(m.zeros(1))

def _param_assign(m):
    lin = m.nn.Linear(2, 2)
    lin.weight = m.zeros(2, 2)

def _register_param_bad(m):
    lin = m.nn.Linear(2, 2)
    lin.register_parameter("x", m.zeros(2))

def _detach_inplace_saved(m):
    x = m.ones(3, requires_grad=True)
    y = x.sigmoid()
    y.detach().zero_()
    y.sum().backward()  # torch: fine? detach shares version counter -> error

def _matmul_0d(m):
    m.matmul(m.tensor(1.0), m.zeros(3))

def _dot(m):
    m.dot(m.zeros(3), m.zeros(4))

def _dot_2d(m):
    m.dot(m.zeros(3, 1), m.zeros(3, 1))

def _outer(m):
    m.outer(m.zeros(3, 1), m.zeros(3))

def _addmm(m):
    m.addmm(m.zeros(2, 2), m.zeros(2, 3), m.zeros(4, 2))

def _baddbmm(m):
    m.baddbmm(m.zeros(2, 2, 2), m.zeros(2, 2, 3), m.zeros(2, 4, 2))

def _einsum_ops(m):
    m.einsum("ij,jk->ik", m.zeros(2, 3))

def _einsum_ndim(m):
    m.einsum("ij->i", m.zeros(2, 3, 4))

def _einsum_letter(m):
    m.einsum("ij->ik", m.zeros(2, 3))

def _tensordot(m):
    m.tensordot(m.zeros(2, 3), m.zeros(4, 5), dims=1)

def _cross(m):
    m.linalg.cross(m.zeros(4), m.zeros(4))

def _inv(m):
    m.linalg.inv(m.zeros(2, 3))

def _solve(m):
    m.linalg.solve(m.eye(3), m.zeros(4))

def _cholesky(m):
    m.linalg.cholesky(-m.eye(2))

def _det(m):
    m.linalg.det(m.zeros(3))

def _norm_ord(m):
    m.linalg.norm(m.zeros(3, 3), ord="x")

def _clamp_none(m):
    m.clamp(m.zeros(3))

def _pow_int_neg(m):
    m.tensor([2]) ** -1

def _div_mode(m):
    m.div(m.zeros(3), 2, rounding_mode="round")

def _bitwise_float(m):
    m.zeros(3) & m.zeros(3)

def _lshift_float(m):
    m.zeros(3) << 1

def _fmod_bad(m):
    m.remainder(m.zeros(3), m.zeros(4))

def _lerp(m):
    m.lerp(m.zeros(3), m.zeros(4), 0.5)

def _where_cond_dtype(m):
    m.where(m.zeros(3), m.zeros(3), m.zeros(3))

def _masked_fill_dtype(m):
    m.zeros(3).masked_fill(m.zeros(3), 1.0)

def _masked_select(m):
    m.masked_select(m.zeros(3), m.zeros(4, dtype=m.bool))

def _index_select_float(m):
    m.index_select(m.zeros(3), 0, m.tensor([0.0]))

def _index_select_2d(m):
    m.index_select(m.zeros(3), 0, m.tensor([[0]]))

def _gather_float(m):
    m.gather(m.zeros(3), 0, m.tensor([0.0]))

def _gather_oob(m):
    m.gather(m.zeros(3), 0, m.tensor([3]))

def _scatter_oob(m):
    m.zeros(3).scatter(0, m.tensor([3]), m.ones(1))

def _index_put_shape(m):
    x = m.zeros(3)
    x[m.tensor([0, 1])] = m.ones(3)

def _narrow(m):
    m.zeros(3).narrow(1, 0, 1)

def _roll(m):
    m.zeros(3).roll(1, 2)

def _flip(m):
    m.zeros(3).flip(1)

def _flip_rep(m):
    m.zeros(3, 3).flip(0, 0)

def _movedim(m):
    m.zeros(3).movedim(0, 1)

def _expand_neg(m):
    m.zeros(3).expand(-1, -1)

def _expand_fewer(m):
    m.zeros(2, 3).expand(3)

def _broadcast_to(m):
    m.broadcast_to(m.zeros(2, 3), (3, 3))

def _broadcast_tensors(m):
    m.broadcast_tensors(m.zeros(2, 3), m.zeros(4))

def _tril_1d(m):
    m.tril(m.zeros(3))

def _diag_embed(m):
    m.diag_embed(m.zeros(3), dim1=0, dim2=0)

def _tensor_ragged(m):
    m.tensor([[1, 2], [3]])

def _tensor_str(m):
    m.tensor("abc")

def _zeros_neg(m):
    m.zeros(-1)

def _ones_float_size(m):
    m.ones(2.5)

def _empty_neg(m):
    m.empty(2, -3)

def _randint_bad(m):
    m.randint(5, 2, (3,))

def _rand_neg(m):
    m.rand(-2)

def _arange_zero(m):
    m.arange(0, 10, 0)

def _arange_sign(m):
    m.arange(0, 10, -1)

def _normal_std(m):
    m.normal(m.zeros(3), -1.0)

def _eye_neg(m):
    m.eye(-1)

def _full_size(m):
    m.full((2, -1), 1.0)

def _to_bad(m):
    m.zeros(3).to("nonsense")

def _type_bad(m):
    m.zeros(3, dtype="float32")

def _clone_fmt(m):
    m.zeros(3).contiguous(memory_format=m.channels_last)

def _stack_empty(m):
    m.stack([])

def _cat_empty(m):
    m.cat([])

def _cat_dtype(m):
    m.cat([m.zeros(2), m.zeros(2, 2)])

def _squeeze_dims(m):
    m.zeros(2, 3).squeeze((0, 3))

def _sum_dup(m):
    m.zeros(2, 3).sum((0, 0))

def _permute_len(m):
    m.zeros(2, 3).permute(0)

def _permute_oob(m):
    m.zeros(2, 3).permute(0, 2)

def _transpose_neg(m):
    m.zeros(2, 3).transpose(-3, 0)

def _t3d(m):
    m.zeros(2, 3, 4).t()

def _mT1d(m):
    return m.zeros(3).mT

def _view_neg2(m):
    m.zeros(6).view(-2, 3)

def _view_dtype(m):
    m.zeros(3).view(m.float64)

def _reshape_zero(m):
    m.zeros(6).reshape(0, -1)

def _unflatten(m):
    m.zeros(2, 6).unflatten(1, (4, 2))

def _sort_dim(m):
    m.zeros(3).sort(dim=1)

def _cumsum_dim(m):
    m.zeros(3).cumsum(dim=1)

def _std_dim(m):
    m.zeros(3).std(dim=1)

def _max_empty(m):
    m.zeros(0).max()

def _argmax_empty(m):
    m.zeros(0).argmax()

def _max_dim_empty(m):
    m.zeros(2, 0).max(dim=1)

def _min_two(m):
    m.min(m.zeros(3), m.zeros(4))

def _maximum(m):
    m.maximum(m.zeros(3), m.zeros(4))

def _clamp_shape(m):
    m.clamp(m.zeros(3), m.zeros(4))

def _allclose(m):
    m.allclose(m.zeros(3), m.zeros(4))

def _eq_shape(m):
    return m.zeros(3) == m.zeros(4)

def _addcmul(m):
    m.addcmul(m.zeros(3), m.zeros(4), m.zeros(3))

def _mul_inplace_bcast(m):
    x = m.zeros(3, 1)
    x.mul_(m.ones(3, 4))

def _copy_shape(m):
    m.zeros(3).copy_(m.zeros(4))

def _fill_nonscalar(m):
    m.zeros(3).fill_(m.zeros(2))

def _index_fill(m):
    m.zeros(3).index_fill(1, m.tensor([0]), 1.0)

def _index_copy(m):
    m.zeros(3, 2).index_copy(0, m.tensor([0]), m.zeros(1, 3))

def _put(m):
    m.zeros(3).put(m.tensor([5]), m.tensor([1.0]))

def _take(m):
    m.take(m.zeros(3), m.tensor([5]))

def _repeat_interleave(m):
    m.zeros(3).repeat_interleave(m.tensor([1, 2]))

def _tile_neg(m):
    m.zeros(3).tile(-1)

def _cdist(m):
    m.cdist(m.zeros(2, 3), m.zeros(2, 4))

def _cosine(m):
    m.nn.functional.cosine_similarity(m.zeros(2, 3), m.zeros(2, 4))

def _bilinear(m):
    m.nn.Bilinear(2, 3, 4)(m.zeros(5, 2), m.zeros(5, 2))

def _embedding_bag(m):
    m.nn.functional.embedding(m.tensor([[0, 7]]), m.zeros(5, 2))

def _softmax_nodim(m):
    m.softmax(m.zeros(3))

def _gelu_approx(m):
    m.nn.functional.gelu(m.zeros(3), approximate="fast")

def _leaky(m):
    m.nn.functional.glu(m.zeros(3))

def _prelu(m):
    m.nn.PReLU(3)(m.zeros(2, 4))

def _pixel_shuffle(m):
    m.nn.functional.pixel_shuffle(m.zeros(1, 3, 2, 2), 2)

def _avgpool_3d(m):
    m.nn.functional.avg_pool2d(m.zeros(4), 2)

def _adaptive(m):
    m.nn.functional.adaptive_avg_pool2d(m.zeros(4), 2)

def _upsample(m):
    m.nn.functional.interpolate(m.zeros(1, 1, 4, 4), scale_factor=2, mode="cubic")

def _grid_sample(m):
    m.nn.functional.grid_sample(m.zeros(1, 1, 4, 4), m.zeros(1, 2, 2, 3), align_corners=False)

def _unfold_f(m):
    m.nn.functional.unfold(m.zeros(4, 4), 2)

def _fold(m):
    m.nn.functional.fold(m.zeros(1, 5, 9), (4, 4), 2)

def _sdpa_mask(m):
    q = m.zeros(2, 3, 4)
    m.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=m.zeros(5, 5))

def _lr_sched(m):
    opt = m.optim.SGD([m.ones(1, requires_grad=True)], lr=0.1)
    m.optim.lr_scheduler.StepLR(opt, step_size=0)

def _opt_not_iter(m):
    m.optim.SGD(m.ones(1, requires_grad=True), lr=0.1)

def _opt_dup(m):
    w = m.ones(1, requires_grad=True)
    m.optim.SGD([w, w], lr=0.1)

def _opt_sd(m):
    w = m.ones(1, requires_grad=True)
    opt = m.optim.SGD([w], lr=0.1)
    opt.load_state_dict({"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]})

def _grad_wrong_shape_assign(m):
    w = m.ones(3, requires_grad=True)
    w.grad = m.zeros(4)

def _grad_wrong_dtype_assign(m):
    w = m.ones(3, requires_grad=True)
    w.grad = m.zeros(3, dtype=m.float64)

def _hook_non_grad(m):
    m.ones(3).register_hook(lambda g: g)

def _retain_grad_nonreq(m):
    m.ones(3).retain_grad()

def _backward_int(m):
    m.tensor(1.0, requires_grad=True).backward(m.tensor(1))

def _leaf_view_inplace(m):
    w = m.ones(3, requires_grad=True)
    w[0] = 2.0

def _no_grad_then_backward(m):
    w = m.ones(3, requires_grad=True)
    with m.no_grad():
        y = (w * 2).sum()
    y.backward()

def _sd_missing_nested(m):
    net = m.nn.Sequential(m.nn.Linear(2, 2), m.nn.Linear(2, 2))
    sd = dict(net.state_dict())
    del sd["1.weight"]
    net.load_state_dict(sd)

def _module_add_bad(m):
    m.nn.Module().add_module("a.b", m.nn.Linear(1, 1))

def _sequential_bad(m):
    m.nn.Sequential(m.nn.Linear(1, 1), 3)

def _modulelist_index(m):
    m.nn.ModuleList([m.nn.Linear(1, 1)])[2]

def _module_getattr(m):
    return m.nn.Linear(1, 1).wieght

def _linear_3d_w(m):
    m.nn.functional.linear(m.zeros(2, 3), m.zeros(2, 2, 3))

def _linear_bias(m):
    m.nn.functional.linear(m.zeros(2, 3), m.zeros(4, 3), m.zeros(5))

def _emb_2d_w(m):
    m.nn.functional.embedding(m.tensor([0]), m.zeros(5))

def _conv_transpose(m):
    m.nn.ConvTranspose2d(3, 4, 3)(m.zeros(1, 2, 5, 5))

def _maxpool_neg(m):
    m.nn.MaxPool2d(0)(m.zeros(1, 1, 4, 4))

def _batchnorm_train_1(m):
    bn = m.nn.BatchNorm1d(3)
    bn(m.zeros(1, 3))

def _instancenorm(m):
    m.nn.InstanceNorm2d(3)(m.zeros(1, 4, 5, 5))

def _rnn_batch_first(m):
    r = m.nn.GRU(4, 5, batch_first=True)
    r(m.zeros(2, 3, 5))

def _rnncell(m):
    m.nn.LSTMCell(4, 5)(m.zeros(2, 6))

def _grucell_h(m):
    m.nn.GRUCell(4, 5)(m.zeros(2, 4), m.zeros(3, 5))

def _transformer_in(m):
    layer = m.nn.TransformerEncoderLayer(8, 2)
    layer(m.zeros(3, 2, 6))

def _ce_label_smooth(m):
    m.nn.functional.cross_entropy(m.zeros(2, 3), m.tensor([0, 1]), label_smoothing=1.5)

def _ce_weight_shape(m):
    m.nn.functional.cross_entropy(m.zeros(2, 3), m.tensor([0, 1]), weight=m.ones(4))

def _ce_float_target_dtype(m):
    m.nn.functional.cross_entropy(m.zeros(2, 3), m.tensor([0.0, 1.0]))

def _nll_3d_target(m):
    m.nn.functional.nll_loss(m.zeros(2, 3, 4), m.zeros(2, 5, dtype=m.int64))

def _bce_logits_shape(m):
    m.nn.functional.binary_cross_entropy_with_logits(m.zeros(2, 3), m.zeros(3, 2))

def _huber_delta(m):
    m.nn.functional.huber_loss(m.zeros(3), m.zeros(3), delta=-1.0)

def _smoothl1_beta(m):
    m.nn.functional.smooth_l1_loss(m.zeros(3), m.zeros(3), beta=-1.0)

def _triplet(m):
    m.nn.functional.triplet_margin_loss(m.zeros(2, 3), m.zeros(2, 3), m.zeros(2, 4))

CASES = [
    # binary ops
    ("add_shape", lambda m: m.zeros(2, 3) + m.zeros(4), ["2, 3", "4"]),
    ("mul_shape", lambda m: m.mul(m.zeros(2, 3), m.zeros(3, 2)), ["2, 3", "3, 2"]),
    ("sub_shape_3d", lambda m: m.zeros(2, 3, 4) - m.zeros(2, 4, 3), ["2, 3, 4", "2, 4, 3"]),
    ("div_shape", lambda m: m.zeros(5) / m.zeros(3), ["5", "3"]),
    ("pow_shape", lambda m: m.zeros(5) ** m.zeros(3), ["5", "3"]),
    ("eq_shape", _eq_shape, ["3", "4"]),
    ("maximum_shape", _maximum, ["3", "4"]),
    ("min_two_shape", _min_two, ["3", "4"]),
    ("clamp_shape", _clamp_shape, ["3", "4"]),
    ("addcmul_shape", _addcmul, ["3", "4"]),
    ("lerp_shape", _lerp, ["3", "4"]),
    ("remainder_shape", _fmod_bad, ["3", "4"]),
    ("allclose_shape", _allclose, ["3", "4"]),
    ("inplace_broadcast", _inplace_broadcast, ["2, 3", "3"]),
    ("mul_inplace_broadcast", _mul_inplace_bcast, ["3, 1", "3, 4"]),
    ("copy_shape", _copy_shape, ["3", "4"]),
    ("fill_nonscalar", _fill_nonscalar, ["fill_"]),
    # matmul family
    ("matmul_shape", lambda m: m.zeros(2, 3) @ m.zeros(4, 5), ["matmul", "(2, 3)", "(4, 5)"]),
    ("matmul_1d", lambda m: m.matmul(m.zeros(3), m.zeros(4)), ["3", "4"]),
    ("matmul_batch", lambda m: m.matmul(m.zeros(2, 3, 4), m.zeros(3, 4, 5)), ["2", "3"]),
    ("matmul_0d", _matmul_0d, ["matmul"]),
    ("matmul_dtype", lambda m: m.zeros(2, 3) @ m.zeros(3, 2, dtype=m.float64), ["matmul", "float32", "float64"]),
    ("mm_shape", lambda m: m.mm(m.zeros(2, 3), m.zeros(4, 5)), ["mm", "(2, 3)", "(4, 5)"]),
    ("mm_3d", lambda m: m.mm(m.zeros(2, 3, 4), m.zeros(4, 5)), ["mm"]),
    ("mm_dtype", lambda m: m.mm(m.zeros(2, 3), m.zeros(3, 2, dtype=m.float64)), ["mm", "float32", "float64"]),
    ("bmm_shape", lambda m: m.bmm(m.zeros(2, 3, 4), m.zeros(2, 5, 6)), ["bmm"]),
    ("bmm_batch", lambda m: m.bmm(m.zeros(2, 3, 4), m.zeros(3, 4, 6)), ["bmm"]),
    ("bmm_2d", lambda m: m.bmm(m.zeros(3, 4), m.zeros(4, 6)), ["bmm"]),
    ("mv_shape", lambda m: m.mv(m.zeros(2, 3), m.zeros(4)), ["mv", "(2, 3)", "(4,)"]),
    ("mv_2d", lambda m: m.mv(m.zeros(2, 3), m.zeros(3, 1)), ["mv"]),
    ("dot_shape", _dot, ["dot", "3", "4"]),
    ("dot_2d", _dot_2d, ["dot"]),
    ("outer_2d", _outer, ["outer"]),
    ("addmm_shape", _addmm, ["(2, 3)", "(4, 2)"]),
    ("baddbmm_shape", _baddbmm, ["baddbmm"]),
    ("tensordot", _tensordot, ["3", "4"]),
    ("einsum_operands", _einsum_ops, ["einsum"]),
    ("einsum_ndim", _einsum_ndim, ["einsum"]),
    ("einsum_bad_out", _einsum_letter, ["einsum"]),
    ("einsum_shape", lambda m: m.einsum("ij,jk->ik", m.zeros(2, 3), m.zeros(4, 5)), ["einsum", "3", "4"]),
    ("cross_dim", _cross, ["cross"]),
    ("inv_nonsquare", _inv, ["2", "3"]),
    ("solve_shape", _solve, ["solve"]),
    ("det_1d", _det, ["det"]),
    ("cdist_shape", _cdist, ["cdist"]),
    ("cosine_similarity", _cosine, ["3", "4"]),
    # shape ops
    ("cat_shape", lambda m: m.cat([m.zeros(2, 3), m.zeros(2, 4)]), ["cat", "3", "4"]),
    ("cat_ndim", _cat_dtype, ["cat"]),
    ("cat_dim", _cat_dtype_dim, ["cat", "2"]),
    ("cat_empty", _cat_empty, ["cat"]),
    ("stack_shape", lambda m: m.stack([m.zeros(2, 3), m.zeros(3, 2)]), ["stack", "2, 3", "3, 2"]),
    ("stack_empty", _stack_empty, ["stack"]),
    ("stack_dim", lambda m: m.stack([m.zeros(2), m.zeros(2)], dim=3), ["stack", "3"]),
    ("where_shape", lambda m: m.where(m.zeros(3, dtype=m.bool), m.zeros(4), m.zeros(3)), ["3", "4"]),
    ("where_cond_dtype", _where_cond_dtype, ["where"]),
    ("index_select_oob", lambda m: m.index_select(m.zeros(3, 4), 0, m.tensor([0, 3])), ["index"]),
    ("index_select_dim", lambda m: m.index_select(m.zeros(3, 4), 2, m.tensor([0])), ["index_select", "2"]),
    ("index_select_float", _index_select_float, ["index_select"]),
    ("index_select_2d", _index_select_2d, ["index_select"]),
    ("gather_ndim", lambda m: m.gather(m.zeros(3, 4), 1, m.zeros(3, dtype=m.int64)), ["gather"]),
    ("gather_shape", lambda m: m.gather(m.zeros(3, 4), 1, m.zeros(4, 2, dtype=m.int64)), ["gather"]),
    ("gather_oob", _gather_oob, ["gather"]),
    ("gather_float", _gather_float, ["gather"]),
    ("scatter_shape", lambda m: m.zeros(3, 4).scatter(1, m.zeros(4, 2, dtype=m.int64), m.ones(3, 2)), ["scatter"]),
    ("scatter_oob", _scatter_oob, ["scatter"]),
    ("scatter_float_index", lambda m: m.zeros(3).scatter(0, m.tensor([0.0]), m.ones(1)), ["scatter"]),
    ("masked_fill_shape", lambda m: m.zeros(3, 4).masked_fill(m.zeros(3, dtype=m.bool), 1.0), ["3", "4"]),
    ("masked_fill_dtype", _masked_fill_dtype, ["masked_fill"]),
    ("masked_select_shape", _masked_select, ["3", "4"]),
    ("expand_shape", lambda m: m.zeros(2, 3).expand(2, 4), ["expand", "3", "4"]),
    ("expand_fewer", _expand_fewer, ["expand"]),
    ("expand_neg_new", _expand_neg, ["expand"]),
    ("broadcast_to", _broadcast_to, ["2, 3", "3, 3"]),
    ("broadcast_tensors", _broadcast_tensors, ["3", "4"]),
    ("view_numel", lambda m: m.zeros(2, 3).view(4, 2), ["view", "4, 2", "6"]),
    ("reshape_numel", lambda m: m.zeros(2, 3).reshape(4, 2), ["4, 2", "6"]),
    ("reshape_infer", lambda m: m.zeros(2, 3).reshape(4, -1), ["-1", "6"]),
    ("reshape_two_neg", lambda m: m.zeros(6).reshape(-1, -1), ["-1"]),
    ("view_noncontig", _view_noncontig, ["view", "reshape"]),
    ("view_neg2", _view_neg2, ["-2"]),
    ("reshape_zero", _reshape_zero, ["0", "-1"]),
    ("unflatten", _unflatten, ["unflatten"]),
    ("squeeze_dim", lambda m: m.zeros(2, 3).squeeze(2), ["squeeze", "2"]),
    ("squeeze_dims", _squeeze_dims, ["squeeze", "3"]),
    ("unsqueeze_dim", _unsqueeze, ["unsqueeze", "4"]),
    ("permute_repeat", lambda m: m.zeros(2, 3).permute(0, 0), ["permute"]),
    ("permute_len", _permute_len, ["permute"]),
    ("permute_oob", _permute_oob, ["2"]),
    ("transpose_dim", lambda m: m.zeros(2, 3).transpose(0, 2), ["transpose", "2"]),
    ("transpose_neg", _transpose_neg, ["transpose", "-3"]),
    ("t_3d", _t3d, ["t"]),
    ("mT_1d", _mT1d, ["mT"]),
    ("flatten_dim", _flatten, ["flatten", "2"]),
    ("narrow_dim", _narrow, ["narrow", "1"]),
    ("roll_dim", _roll, ["roll", "2"]),
    ("flip_dim", _flip, ["flip", "1"]),
    ("flip_repeat", _flip_rep, ["flip"]),
    ("movedim_dim", _movedim, ["movedim", "1"]),
    ("repeat_few", _repeat_few, ["repeat"]),
    ("tile_neg", _tile_neg, ["-1"]),
    ("unfold_size", _unfold, ["unfold", "6"]),
    ("chunk_zero", _chunk0, ["chunk"]),
    ("split_sizes", _split_sizes, ["split"]),
    ("tril_1d", _tril_1d, ["tril"]),
    ("diag_embed_same", _diag_embed, ["diag_embed"]),
    ("repeat_interleave", _repeat_interleave, ["repeat"]),
    ("view_dtype", _view_dtype, ["view"]),
    # reductions
    ("sum_dim", _sum_dim, ["sum", "2"]),
    ("sum_dup", _sum_dup, ["sum", "0"]),
    ("argmax_dim", _argmax_dim, ["argmax", "3"]),
    ("softmax_dim", _softmax_dim, ["softmax", "2"]),
    ("log_softmax_dim", _log_softmax_dim, ["log_softmax", "-3"]),
    ("sort_dim", _sort_dim, ["sort", "1"]),
    ("cumsum_dim", _cumsum_dim, ["cumsum", "1"]),
    ("std_dim", _std_dim, ["std", "1"]),
    ("mean_int", _mean_int, ["mean"]),
    ("max_empty", _max_empty, ["max"]),
    ("argmax_empty", _argmax_empty, ["argmax"]),
    ("max_dim_empty", _max_dim_empty, ["max"]),
    ("topk_k", _topk, ["topk"]),
    # indexing
    ("index_oob", _index_oob, ["index", "3"]),
    ("index_oob_dim1", _index_oob2, ["4"]),
    ("index_too_many", _index_too_many, ["3"]),
    ("index_tensor_oob", _index_tensor_oob, ["5"]),
    ("index_bool_shape", _index_bool_shape, ["2", "3"]),
    ("setitem_shape", _setitem_shape, ["5", "4"]),
    ("index_put_shape", _index_put_shape, ["3", "2"]),
    ("index_fill_dim", _index_fill, ["index_fill", "1"]),
    ("index_copy_shape", _index_copy, ["index_copy"]),
    ("put_oob", _put, ["put", "3"]),
    ("take_oob", _take, ["take", "3"]),
    ("item_multi", _item, ["item"]),
    ("bool_multi", _bool, ["ambiguous"]),
    # creation
    ("arange_step_zero", _arange_zero, ["step"]),
    ("arange_step_sign", _arange_sign, ["step"]),
    ("randn_neg", lambda m: m.randn(-1), ["-1"]),
    ("randn_neg2", lambda m: m.randn(2, -3), ["-3"]),
    ("rand_neg", _rand_neg, ["-2"]),
    ("zeros_neg", _zeros_neg, ["-1"]),
    ("empty_neg", _empty_neg, ["-3"]),
    ("full_neg", _full_size, ["-1"]),
    ("new_zeros_neg", _full_bad, ["-1"]),
    ("eye_neg", _eye_neg, ["-1"]),
    ("linspace_neg", _linspace, ["steps"]),
    ("randint_range", _randint_bad, ["randint"]),
    ("ones_float_size", _ones_float_size, ["float"]),
    ("tensor_ragged", _tensor_ragged, []),
    ("tensor_str", _tensor_str, []),
    ("normal_std", _normal_std, ["std"]),
    ("multinomial_replacement", _multinomial, ["multinomial"]),
    ("multinomial_neg", _multinomial_neg, ["multinomial"]),
    ("zeros_dtype_str", _type_bad, ["dtype"]),
    ("to_bad_device", _to_bad, []),
    ("contiguous_channels_last_1d", _clone_fmt, []),
    # dtype errors
    ("bitwise_float", _bitwise_float, ["bitwise_and", "float32"]),
    ("lshift_float", _lshift_float, ["shift", "float32"]),
    ("pow_int_negative", _pow_int_neg, ["negative"]),
    ("div_rounding_mode", _div_mode, ["rounding_mode"]),
    ("clamp_no_bounds", _clamp_none, ["clamp"]),
    # nn layers
    ("linear_in_features", _linear, ["linear", "(2, 5)", "(3, 4)"]),
    ("sequential_wrong", _sequential_wrong, ["linear", "(2, 8)", "(2, 6)"]),
    ("linear_f_3d_weight", _linear_3d_w, []),
    ("linear_bias_shape", _linear_bias, ["5"]),
    ("bilinear_in2", _bilinear, ["3"]),
    ("conv2d_channels", _conv_ch, ["3", "2"]),
    ("conv2d_2d_input", _conv_2d, ["conv2d"]),
    ("conv2d_5d_input", _conv_5d, ["conv2d"]),
    ("conv2d_kernel_too_big", _conv_small, ["5"]),
    ("conv2d_groups", _conv_groups, ["groups"]),
    ("conv2d_f_weight", _conv_f_weight, ["3", "2"]),
    ("conv1d_channels", _conv1d_ch, ["3", "2"]),
    ("conv_transpose_channels", _conv_transpose, ["3", "2"]),
    ("layernorm_shape", _ln, ["5", "2, 4"]),
    ("layer_norm_f_shape", _layer_norm_f, ["5", "2, 4"]),
    ("batchnorm_channels", _bn, ["3", "4"]),
    ("batchnorm1d_channels", _bn1d, ["3", "4"]),
    ("batchnorm2d_3d_input", _bn_dim, ["4D"]),
    ("batchnorm_train_batch1", _batchnorm_train_1, ["1"]),
    ("instancenorm_channels", _instancenorm, ["3", "4"]),
    ("groupnorm_divisible", _group_norm, ["3", "4"]),
    ("groupnorm_channels", _group_norm_ch, ["4", "6"]),
    ("embedding_oob", _emb, ["5"]),
    ("embedding_neg", _emb_neg, ["-1"]),
    ("embedding_float", _emb_float, ["embedding", "float32"]),
    ("embedding_f_oob", _embedding_bag, ["7"]),
    ("embedding_1d_weight", _emb_2d_w, ["2"]),
    ("prelu_channels", _prelu, ["3", "4"]),
    ("pixel_shuffle", _pixel_shuffle, ["pixel_shuffle"]),
    ("max_pool_too_small", _pool, ["pool"]),
    ("max_pool_kernel0", _maxpool_neg, ["kernel"]),
    ("avg_pool_1d", _avgpool_3d, ["avg_pool2d"]),
    ("adaptive_pool_1d", _adaptive, ["adaptive_avg_pool2d"]),
    ("interpolate_size_len", _interp, ["size"]),
    ("interpolate_mode", _upsample, ["cubic"]),
    ("grid_sample_grid", _grid_sample, ["grid"]),
    ("unfold_f_2d", _unfold_f, ["unfold"]),
    ("fold_f", _fold, ["fold"]),
    ("pad_odd", _pad, ["pad"]),
    ("one_hot_oob", _one_hot, ["one_hot"]),
    ("glu_odd", _leaky, ["glu"]),
    ("gelu_approx", _gelu_approx, ["fast"]),
    ("dropout_p", _dropout_p, ["1.5"]),
    ("dropout_module_p", _dropout_mod, ["-0.1"]),
    ("softmax_no_dim", _softmax_nodim, []),
    ("F_softmax_implicit_dim", lambda m: m.nn.functional.softmax(m.zeros(2, 3, 4)), ["softmax", "dim=0"]),
    ("F_log_softmax_implicit_dim", lambda m: m.nn.functional.log_softmax(m.zeros(2, 3)), ["log_softmax", "dim=1"]),
    ("lstm_input_size", _lstm, ["4", "6"]),
    ("gru_input_size", _gru, ["4", "6"]),
    ("lstm_2d_wrong", _lstm_2d_in, ["4", "6"]),
    ("lstm_h0_shape", _rnn_h0, ["6", "5"]),
    ("gru_batch_first_input", _rnn_batch_first, ["4", "5"]),
    ("lstmcell_input", _rnncell, ["4", "6"]),
    ("grucell_hidden", _grucell_h, ["3", "2"]),
    ("mha_embed_dim", _mha, ["8", "6"]),
    ("mha_heads_divisible", _mha_heads, ["8", "3"]),
    ("mha_kv_len", _mha_kv, ["4", "5"]),
    ("transformer_heads", _transformer_layer, ["8", "3"]),
    ("transformer_embed", _transformer_in, ["8", "6"]),
    ("sdpa_dims", _sdpa, []),
    ("sdpa_mask", _sdpa_mask, []),
    # losses
    ("ce_target_oob", _ce_target, ["3"]),
    ("ce_target_neg", _ce_neg, ["-2"]),
    ("ce_target_shape", _ce_shape, ["2", "3"]),
    ("ce_prob_target_shape", _ce_float_shape, ["2, 3", "2, 4"]),
    ("ce_reduction", _ce_reduction_bad, ["avg"]),
    ("ce_int_input", _ce_int_input, []),
    ("ce_label_smoothing", _ce_label_smooth, ["1.5"]),
    ("ce_weight_shape", _ce_weight_shape, ["4", "3"]),
    ("ce_float_target_1d", _ce_float_target_dtype, []),
    ("nll_target_oob", _nll_target, ["3"]),
    ("nll_target_shape_3d", _nll_3d_target, []),
    ("mse_size_warns", _mse, ["mse_loss", "(3, 1)", "(3,)"]),
    ("mse_nonbroadcast", _mse_bad, ["3, 2", "4"]),
    ("l1_nonbroadcast", _l1_bad, ["3, 2", "4"]),
    ("mse_reduction", _reduction_bad, ["avg"]),
    ("bce_shape", _bce_shape, ["2, 3", "3, 2"]),
    ("bce_range", _bce_range, []),
    ("bce_logits_shape", _bce_logits_shape, ["2, 3", "3, 2"]),
    ("bce_logits_broadcast", lambda m: m.nn.functional.binary_cross_entropy_with_logits(m.zeros(3, 1), m.zeros(3)), ["(3, 1)", "(3,)"]),
    ("l1_size_warns", lambda m: m.nn.functional.l1_loss(m.zeros(3, 1), m.zeros(3)), ["l1_loss", "(3, 1)", "(3,)"]),
    ("huber_size_warns", lambda m: m.nn.functional.huber_loss(m.zeros(3, 1), m.zeros(3)), ["huber_loss", "(3, 1)", "(3,)"]),
    ("kl_div_shape", _kl_shape, ["2, 3", "3, 2"]),
    ("huber_delta", _huber_delta, ["delta"]),
    ("smooth_l1_beta", _smoothl1_beta, ["beta"]),
    ("triplet_shape", _triplet, []),
    # modules
    ("module_no_forward", _module_missing_forward, ["forward"]),
    ("param_assign_tensor", _param_assign, ["weight"]),
    ("register_param_tensor", _register_param_bad, ["Parameter"]),
    ("add_module_dot", _module_add_bad, ["."]),
    ("sequential_nonmodule", _sequential_bad, []),
    ("modulelist_index", _modulelist_index, ["2"]),
    ("module_getattr", _module_getattr, ["wieght"]),
    ("state_dict_missing", _sd_missing, ["Missing", "bias"]),
    ("state_dict_unexpected", _sd_unexpected, ["Unexpected", "extra"]),
    ("state_dict_shape", _sd_shape, ["weight", "(3, 4)", "(3, 2)"]),
    ("state_dict_missing_nested", _sd_missing_nested, ["1.weight"]),
    # optim
    ("optim_nonleaf", _opt_nonleaf, ["leaf"]),
    ("optim_empty", lambda m: m.optim.SGD([], lr=0.1), ["empty"]),
    ("optim_adam_empty", lambda m: m.optim.Adam([]), ["empty"]),
    ("optim_lr_neg", _opt_lr, ["-1"]),
    ("adam_beta", _adam_beta, ["1.5"]),
    ("optim_tensor_not_iterable", _opt_not_iter, []),
    ("optim_duplicate", _opt_dup, []),
    ("optim_load_state_groups", _opt_sd, []),
    ("clip_grad_norm_type", _clip_grad, []),
    # autograd
    ("backward_nonscalar", _backward_nonscalar, ["scalar"]),
    ("backward_no_grad", _backward_noreq, ["grad"]),
    ("backward_grad_shape", _grad_shape, ["3", "4"]),
    ("backward_twice", _backward_twice, ["retain_graph"]),
    ("inplace_saved_output", _inplace_saved, ["in place"]),
    ("inplace_saved_input", _inplace_saved2, ["in place"]),
    ("detach_inplace_saved", _detach_inplace_saved, ["in place"]),
    ("inplace_leaf", _inplace_leaf, ["leaf"]),
    ("leaf_setitem", _leaf_view_inplace, ["leaf"]),
    ("requires_grad_int_attr", _reqgrad_int_attr, ["floating"]),
    ("requires_grad_int_method", _reqgrad_int_, ["floating"]),
    ("requires_grad_int_factory", lambda m: m.zeros(3, dtype=m.int64, requires_grad=True), ["floating"]),
    ("requires_grad_int_tensor", lambda m: m.tensor([1, 2], requires_grad=True), ["floating"]),
    ("numpy_requires_grad", _numpy_grad, ["detach"]),
    ("grad_nonscalar", _grad_nonscalar, ["scalar"]),
    ("grad_unused", _grad_unused, ["allow_unused"]),
    ("grad_assign_shape", _grad_wrong_shape_assign, ["3", "4"]),
    ("grad_assign_dtype", _grad_wrong_dtype_assign, []),
    ("hook_no_grad", _hook_non_grad, ["require"]),
    ("retain_grad_no_grad", _retain_grad_nonreq, ["retain_grad", "requires_grad"]),
    ("backward_under_no_grad_graph", _no_grad_then_backward, ["grad"]),
    # dtype mismatches and more creation/optimizer arguments
    ("conv2d_3d_wrong_channels", lambda m: m.nn.Conv2d(3, 4, 3)(m.zeros(8, 8, 8)), ["3", "8"]),
    ("linear_float64_input", lambda m: m.nn.Linear(3, 2)(m.zeros(4, 3, dtype=m.float64)), ["float64", "float32"]),
    ("linear_f_dtype", lambda m: m.nn.functional.linear(m.zeros(4, 3), m.zeros(2, 3, dtype=m.float64)), ["float64", "float32"]),
    ("conv2d_float64_input", lambda m: m.nn.Conv2d(3, 4, 3)(m.zeros(1, 3, 8, 8, dtype=m.float64)), ["float64", "float32"]),
    ("lstm_float64_input", lambda m: m.nn.LSTM(3, 2)(m.zeros(4, 1, 3, dtype=m.float64)), ["float64", "float32"]),
    ("layernorm_float64_input", lambda m: m.nn.LayerNorm(3)(m.zeros(4, 3, dtype=m.float64)), ["float64", "float32"]),
    ("embedding_oob_2d", lambda m: m.nn.Embedding(5, 2)(m.tensor([[1, 2], [3, 9]])), ["9", "5"]),
    ("bmm_dtype", lambda m: m.bmm(m.zeros(2, 2, 3), m.zeros(2, 3, 2, dtype=m.float64)), ["bmm", "float32", "float64"]),
    ("einsum_dtype", lambda m: m.einsum("ij,jk->ik", m.zeros(2, 3), m.zeros(3, 2, dtype=m.float64)), ["einsum"]),
    ("mv_dtype", lambda m: m.mv(m.zeros(2, 3), m.zeros(3, dtype=m.float64)), ["mv", "float32", "float64"]),
    ("dot_dtype", lambda m: m.dot(m.zeros(3), m.zeros(3, dtype=m.float64)), ["dot", "float32", "float64"]),
    ("batchnorm_float64", lambda m: m.nn.BatchNorm1d(3)(m.zeros(4, 3, dtype=m.float64)), ["float64", "float32"]),
    ("arange_nan", lambda m: m.arange(0, float("nan")), ["arange"]),
    ("arange_inf", lambda m: m.arange(0, float("inf")), ["arange"]),
    ("randn_float_size", lambda m: m.randn(2.5), []),
    ("randint_neg_size", lambda m: m.randint(0, 5, (-1,)), ["-1"]),
    ("full_like_bad", lambda m: m.zeros(3).view(-1, -1), ["-1"]),
    ("stack_dtype_shapes", lambda m: m.stack([m.zeros(2), m.zeros(3)]), ["stack", "(2,)", "(3,)"]),
    ("cat_ndim_mismatch", lambda m: m.cat([m.zeros(2, 3), m.zeros(3)], dim=0), ["cat"]),
    ("scatter_src_dtype", lambda m: m.zeros(3).scatter(0, m.tensor([0]), m.ones(1, dtype=m.float64)), ["scatter"]),
    ("index_add_dtype", lambda m: m.zeros(3).index_add(0, m.tensor([0]), m.ones(1, dtype=m.float64)), ["index_add"]),
    ("masked_scatter_dtype", lambda m: m.zeros(3).masked_scatter(m.ones(3, dtype=m.bool), m.ones(3, dtype=m.float64)), []),
    ("addmm_dtype", lambda m: m.addmm(m.zeros(2, 2), m.zeros(2, 3), m.zeros(3, 2, dtype=m.float64)), ["float32", "float64"]),
    ("copy_broadcast_bad", lambda m: m.zeros(2, 3).copy_(m.zeros(3, 2)), ["(3, 2)", "(2, 3)"]),
    ("sgd_momentum_neg", lambda m: m.optim.SGD([m.ones(1, requires_grad=True)], lr=0.1, momentum=-1), ["momentum"]),
    ("adam_eps_neg", lambda m: m.optim.Adam([m.ones(1, requires_grad=True)], eps=-1), ["eps"]),
    ("adamw_wd_neg", lambda m: m.optim.AdamW([m.ones(1, requires_grad=True)], weight_decay=-1), ["weight_decay"]),
    ("param_int", lambda m: m.nn.Parameter(m.ones(1, dtype=m.int64)), []),
    # session 15 (found by tests/fuzz_extra_dtypes.py ints): descent clamped uint8 to [-1, 1]
    ("hardtanh_uint8", lambda m: m.nn.functional.hardtanh(m.tensor([1, 2], dtype=m.uint8)), ["hardtanh", "unsigned"]),
    ("Hardtanh_uint8_inplace", lambda m: m.nn.Hardtanh(inplace=True)(m.tensor([3], dtype=m.uint8)), ["hardtanh", "unsigned"]),
]
