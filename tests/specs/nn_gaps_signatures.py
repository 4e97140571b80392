"""The public signatures of the torch.nn.functional names docs/nn_extra.md adds (the gaps a
probe of PyTorch 2.13 found), for tests/test_nn_functional.py's signature table."""

NN_GAPS_SIGNATURES = {
    "adaptive_avg_pool1d": "input output_size",
    "channel_shuffle": "input groups",
    "cosine_embedding_loss": (
        "input1 input2 target margin=0 size_average=None reduce=None reduction='mean'"
    ),
    "embedding_bag": (
        "input weight offsets=None max_norm=None norm_type=2 scale_grad_by_freq=False "
        "mode='mean' sparse=False per_sample_weights=None include_last_offset=False "
        "padding_idx=None"
    ),
    "gumbel_softmax": "logits tau=1 hard=False eps=1e-10 dim=-1",
    "instance_norm": (
        "input running_mean=None running_var=None weight=None bias=None "
        "use_input_stats=True momentum=0.1 eps=1e-05"
    ),
    "prelu": "input weight",
    "hinge_embedding_loss": (
        "input target margin=1.0 size_average=None reduce=None reduction='mean'"
    ),
    "soft_margin_loss": "input target size_average=None reduce=None reduction='mean'",
    "multilabel_soft_margin_loss": (
        "input target weight=None size_average=None reduce=None reduction='mean'"
    ),
    "multi_margin_loss": (
        "input target p=1 margin=1.0 weight=None size_average=None reduce=None reduction='mean'"
    ),
    "multilabel_margin_loss": "input target size_average=None reduce=None reduction='mean'",
    "adaptive_avg_pool3d": "input output_size",
    "adaptive_max_pool1d_with_indices": "input output_size return_indices=False",
    "adaptive_max_pool2d_with_indices": "input output_size return_indices=False",
    "adaptive_max_pool3d": "input output_size return_indices=False",
    "adaptive_max_pool3d_with_indices": "input output_size return_indices=False",
    "alpha_dropout": "input p=0.5 training=False inplace=False",
    "bilinear": "input1 input2 weight bias=None",
    "dropout1d": "input p=0.5 training=True inplace=False",
    "dropout2d": "input p=0.5 training=True inplace=False",
    "dropout3d": "input p=0.5 training=True inplace=False",
    "feature_alpha_dropout": "input p=0.5 training=False inplace=False",
    "local_response_norm": "input size alpha=0.0001 beta=0.75 k=1.0",
    "lp_pool1d": "input norm_type kernel_size stride=None ceil_mode=False",
    "lp_pool2d": "input norm_type kernel_size stride=None ceil_mode=False",
    "lp_pool3d": "input norm_type kernel_size stride=None ceil_mode=False",
    "max_pool1d_with_indices": (
        "input kernel_size stride=None padding=0 dilation=1 ceil_mode=False return_indices=False"
    ),
    "max_pool2d_with_indices": (
        "input kernel_size stride=None padding=0 dilation=1 ceil_mode=False return_indices=False"
    ),
    "max_pool3d_with_indices": (
        "input kernel_size stride=None padding=0 dilation=1 ceil_mode=False return_indices=False"
    ),
    "pdist": "input p=2",
    "rrelu": "input lower=0.125 upper=0.3333333333333333 training=False inplace=False",
    "relu_": "input",
    "elu_": "input alpha=1.0",
    "leaky_relu_": "input negative_slope=0.01",
    "hardtanh_": "input min_val=-1.0 max_val=1.0",
    "threshold_": "input threshold value",
    "celu_": "input alpha=1.0",
    "selu_": "input",
    "rrelu_": "input lower=0.125 upper=0.3333333333333333 training=False",
    "triplet_margin_with_distance_loss": (
        "anchor positive negative distance_function=None margin=1.0 swap=False reduction='mean'"
    ),
    # docs/torch_gaps_nn.md
    "conv_tbc": "input weight bias pad=0",
    "native_channel_shuffle": "input groups",
    "fractional_max_pool2d": (
        "input kernel_size output_size=None output_ratio=None return_indices=False "
        "_random_samples=None"
    ),
    "fractional_max_pool2d_with_indices": (
        "input kernel_size output_size=None output_ratio=None return_indices=False "
        "_random_samples=None"
    ),
    "fractional_max_pool3d": (
        "input kernel_size output_size=None output_ratio=None return_indices=False "
        "_random_samples=None"
    ),
    "fractional_max_pool3d_with_indices": (
        "input kernel_size output_size=None output_ratio=None return_indices=False "
        "_random_samples=None"
    ),
    "multi_head_attention_forward": (
        "query key value embed_dim_to_check num_heads in_proj_weight in_proj_bias bias_k bias_v "
        "add_zero_attn dropout_p out_proj_weight out_proj_bias training=True "
        "key_padding_mask=None need_weights=True attn_mask=None use_separate_proj_weight=False "
        "q_proj_weight=None k_proj_weight=None v_proj_weight=None static_k=None static_v=None "
        "average_attn_weights=True is_causal=False"
    ),
    "linear_cross_entropy": (
        "input linear_weight target linear_bias=None weight=None reduction='mean' "
        "ignore_index=None label_smoothing=0.0 options=None"
    ),
}
