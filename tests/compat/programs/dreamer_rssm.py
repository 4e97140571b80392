# A DreamerV3-style world model and actor-critic as danijar's / NM512's dreamerv3-torch write it:
# symlog / symexp, two-hot targets on symexp-spaced buckets (torch.sum(bins <= x) indices,
# clip, one_hot weights) and DiscDist's mean by a softmax dot, an RSSM whose stochastic state is
# 4 categoricals of 4 classes (OneHotCategoricalStraightThrough under Independent(..., 1),
# unimix: probs mixed with a uniform, rsample, mode), a LayerNorm GRU cell (one Linear, split
# into reset / cand / update, update bias -1), observe / imagine loops over time with
# torch.stack and swapaxes, KL balancing with free bits (kl_divergence of detached posteriors
# and priors, clip(min=free)), MSE / Bernoulli heads, lambda-returns by a reversed loop, return
# normalisation by torch.quantile percentiles with an EMA buffer, a slow critic by lerp_-style
# mixing of parameters, actor loss with a straight-through policy gradient and entropy,
# clip_grad_norm_, Adam with eps=1e-8; NumPy makes the observations and all noise.
import numpy as np
import torch
import torch.distributions as torchd
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

torch.manual_seed(0)
rng = np.random.default_rng(3)


def symlog(x):
    return torch.sign(x) * torch.log(torch.abs(x) + 1.0)


def symexp(x):
    return torch.sign(x) * (torch.exp(torch.abs(x)) - 1.0)


class DiscDist:
    def __init__(self, logits, low=-5.0, high=5.0, transfwd=symlog, transbwd=symexp):
        self.logits = logits
        self.probs = torch.softmax(logits, -1)
        self.buckets = torch.linspace(low, high, steps=logits.shape[-1])
        self.width = (self.buckets[-1] - self.buckets[0]) / logits.shape[-1]
        self.transfwd = transfwd
        self.transbwd = transbwd

    def mean(self):
        _mean = self.probs * self.buckets
        return self.transbwd(torch.sum(_mean, dim=-1, keepdim=True))

    def mode(self):
        return self.mean()

    def log_prob(self, x):
        x = self.transfwd(x)
        below = torch.sum((self.buckets <= x[..., None]).to(torch.int32), dim=-1) - 1
        above = len(self.buckets) - torch.sum((self.buckets > x[..., None]).to(torch.int32),
                                              dim=-1)
        below = torch.clip(below, 0, len(self.buckets) - 1)
        above = torch.clip(above, 0, len(self.buckets) - 1)
        equal = below == above
        dist_to_below = torch.where(equal, 1, torch.abs(self.buckets[below] - x))
        dist_to_above = torch.where(equal, 1, torch.abs(self.buckets[above] - x))
        total = dist_to_below + dist_to_above
        weight_below = dist_to_above / total
        weight_above = dist_to_below / total
        target = (F.one_hot(below, num_classes=len(self.buckets)) * weight_below[..., None]
                  + F.one_hot(above, num_classes=len(self.buckets)) * weight_above[..., None])
        log_pred = self.logits - torch.logsumexp(self.logits, -1, keepdim=True)
        target = target.squeeze(-2)
        return (target * log_pred).sum(-1)


class OneHotDist(torchd.one_hot_categorical.OneHotCategoricalStraightThrough):
    def __init__(self, logits=None, probs=None, unimix_ratio=0.0):
        if logits is not None and unimix_ratio > 0.0:
            probs = F.softmax(logits, dim=-1)
            probs = probs * (1.0 - unimix_ratio) + unimix_ratio / probs.shape[-1]
            logits = torch.log(probs)
            super().__init__(logits=logits, probs=None)
        else:
            super().__init__(logits=logits, probs=probs)

    def mode(self):
        _mode = F.one_hot(torch.argmax(super().logits, axis=-1), super().logits.shape[-1])
        return _mode.detach() + super().logits - super().logits.detach()

    def sample_with(self, uniforms):
        # Gumbel-max with NumPy uniforms, straight-through like rsample
        g = -torch.log(-torch.log(uniforms))
        idx = torch.argmax(self.logits + g, -1)
        sample = F.one_hot(idx, self.logits.shape[-1]).float()
        probs = self._categorical.probs
        return sample + probs - probs.detach()


class GRUCell(nn.Module):
    def __init__(self, inp_size, size, norm=True, act=torch.tanh, update_bias=-1):
        super().__init__()
        self._size = size
        self._act = act
        self._update_bias = update_bias
        self.layers = nn.Sequential()
        self.layers.add_module("GRU_linear", nn.Linear(inp_size + size, 3 * size, bias=False))
        if norm:
            self.layers.add_module("GRU_norm", nn.LayerNorm(3 * size, eps=1e-03))

    def forward(self, inputs, state):
        state = state[0]
        parts = self.layers(torch.cat([inputs, state], -1))
        reset, cand, update = torch.split(parts, [self._size] * 3, -1)
        reset = torch.sigmoid(reset)
        cand = self._act(reset * cand)
        update = torch.sigmoid(update + self._update_bias)
        output = update * cand + (1 - update) * state
        return output, [output]


class RSSM(nn.Module):
    def __init__(self, stoch=4, discrete=4, deter=16, hidden=16, num_actions=3, embed=12,
                 unimix_ratio=0.01):
        super().__init__()
        self._stoch, self._discrete, self._deter = stoch, discrete, deter
        self._unimix_ratio = unimix_ratio
        self._img_in_layers = nn.Sequential(nn.Linear(stoch * discrete + num_actions, hidden),
                                            nn.LayerNorm(hidden, eps=1e-03), nn.SiLU())
        self._cell = GRUCell(hidden, deter)
        self._img_out_layers = nn.Sequential(nn.Linear(deter, hidden),
                                             nn.LayerNorm(hidden, eps=1e-03), nn.SiLU())
        self._obs_out_layers = nn.Sequential(nn.Linear(deter + embed, hidden),
                                             nn.LayerNorm(hidden, eps=1e-03), nn.SiLU())
        self._imgs_stat_layer = nn.Linear(hidden, stoch * discrete)
        self._obs_stat_layer = nn.Linear(hidden, stoch * discrete)

    def initial(self, batch_size):
        deter = torch.zeros(batch_size, self._deter)
        return dict(logit=torch.zeros([batch_size, self._stoch, self._discrete]),
                    stoch=torch.zeros([batch_size, self._stoch, self._discrete]), deter=deter)

    def get_feat(self, state):
        stoch = state["stoch"]
        shape = list(stoch.shape[:-2]) + [self._stoch * self._discrete]
        stoch = stoch.reshape(shape)
        return torch.cat([stoch, state["deter"]], -1)

    def get_dist(self, state):
        logit = state["logit"]
        return torchd.independent.Independent(OneHotDist(logit, unimix_ratio=self._unimix_ratio),
                                              1)

    def _suff_stats_layer(self, name, x):
        x = self._imgs_stat_layer(x) if name == "ims" else self._obs_stat_layer(x)
        logit = x.reshape(list(x.shape[:-1]) + [self._stoch, self._discrete])
        return {"logit": logit}

    def img_step(self, prev_state, prev_action, uniforms=None):
        prev_stoch = prev_state["stoch"]
        shape = list(prev_stoch.shape[:-2]) + [self._stoch * self._discrete]
        prev_stoch = prev_stoch.reshape(shape)
        x = torch.cat([prev_stoch, prev_action], -1)
        x = self._img_in_layers(x)
        x, deter = self._cell(x, [prev_state["deter"]])
        deter = deter[0]
        x = self._img_out_layers(x)
        stats = self._suff_stats_layer("ims", x)
        dist = self.get_dist(stats)
        stoch = dist.mode() if uniforms is None else dist.base_dist.sample_with(uniforms)
        return {"stoch": stoch, "deter": deter, **stats}

    def obs_step(self, prev_state, prev_action, embed, is_first, uniforms):
        prev_action = prev_action * (1.0 - is_first.float()).unsqueeze(-1)
        prior = self.img_step(prev_state, prev_action)
        x = torch.cat([prior["deter"], embed], -1)
        x = self._obs_out_layers(x)
        stats = self._suff_stats_layer("obs", x)
        stoch = self.get_dist(stats).base_dist.sample_with(uniforms)
        post = {"stoch": stoch, "deter": prior["deter"], **stats}
        return post, prior

    def observe(self, embed, action, is_first, uniforms):
        swap = lambda x: x.permute([1, 0] + list(range(2, len(x.shape))))  # noqa: E731
        embed, action, is_first = swap(embed), swap(action), swap(is_first)
        state = self.initial(embed.shape[1])
        posts, priors = [], []
        for t in range(embed.shape[0]):
            state, prior = self.obs_step(state, action[t], embed[t], is_first[t], uniforms[t])
            posts.append(state)
            priors.append(prior)
        post = {k: swap(torch.stack([p[k] for p in posts], 0)) for k in posts[0]}
        prior = {k: swap(torch.stack([p[k] for p in priors], 0)) for k in priors[0]}
        return post, prior

    def kl_loss(self, post, prior, free, dyn_scale, rep_scale):
        kld = torchd.kl.kl_divergence
        dist = lambda x: self.get_dist(x)  # noqa: E731
        sg = lambda x: {k: v.detach() for k, v in x.items()}  # noqa: E731
        rep_loss = value = kld(dist(post), dist(sg(prior)))
        dyn_loss = kld(dist(sg(post)), dist(prior))
        rep_loss = torch.clip(rep_loss, min=free)
        dyn_loss = torch.clip(dyn_loss, min=free)
        loss = dyn_scale * dyn_loss + rep_scale * rep_loss
        return loss, value, dyn_loss, rep_loss


class MLPHead(nn.Module):
    def __init__(self, inp, out, hidden=16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(inp, hidden), nn.LayerNorm(hidden, eps=1e-3),
                                 nn.SiLU(), nn.Linear(hidden, out))

    def forward(self, x):
        return self.net(x)


def lambda_return(reward, value, pcont, bootstrap, lambda_, axis):
    assert len(reward.shape) == len(value.shape), (reward.shape, value.shape)
    if isinstance(pcont, (int, float)):
        pcont = pcont * torch.ones_like(reward)
    dims = list(range(len(reward.shape)))
    dims = [axis] + dims[1:axis] + [0] + dims[axis + 1:]
    if axis != 0:
        reward = reward.permute(dims)
        value = value.permute(dims)
        pcont = pcont.permute(dims)
    if bootstrap is None:
        bootstrap = torch.zeros_like(value[-1])
    next_values = torch.cat([value[1:], bootstrap[None]], 0)
    inputs = reward + pcont * next_values * (1 - lambda_)
    outputs = []
    last = bootstrap
    for t in reversed(range(reward.shape[0])):
        last = inputs[t] + pcont[t] * lambda_ * last
        outputs.append(last)
    returns = torch.flip(torch.stack(outputs), [0])
    if axis != 0:
        returns = returns.permute(dims)
    return returns


class RewardEMA:
    def __init__(self, alpha=1e-2):
        self.alpha = alpha
        self.range = torch.tensor([0.05, 0.95])
        self.ema_vals = torch.zeros((2,), dtype=torch.float32)

    def __call__(self, x):
        flat_x = torch.flatten(x.detach())
        x_quantile = torch.quantile(input=flat_x, q=self.range)
        self.ema_vals = self.alpha * x_quantile + (1 - self.alpha) * self.ema_vals
        scale = torch.clip(self.ema_vals[1] - self.ema_vals[0], min=1.0)
        offset = self.ema_vals[0]
        return offset.detach(), scale.detach()


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


B, T, H, A, obs_dim, embed_dim, bins = 3, 6, 5, 3, 10, 12, 15
encoder = load(nn.Sequential(nn.Linear(obs_dim, embed_dim), nn.SiLU()))
rssm = load(RSSM(num_actions=A, embed=embed_dim))
feat_dim = 16 + 16
decoder = load(MLPHead(feat_dim, obs_dim))
reward_head = load(MLPHead(feat_dim, bins))
cont_head = load(MLPHead(feat_dim, 1))
actor = load(MLPHead(feat_dim, A))
critic = load(MLPHead(feat_dim, bins))
slow_critic = load(MLPHead(feat_dim, bins))
wm_params = [p for m in (encoder, rssm, decoder, reward_head, cont_head) for p in m.parameters()]
wm_opt = torch.optim.Adam(wm_params, lr=1e-3, eps=1e-8)
actor_opt = torch.optim.Adam(actor.parameters(), lr=3e-4, eps=1e-5)
critic_opt = torch.optim.Adam(critic.parameters(), lr=3e-4, eps=1e-5)
reward_ema = RewardEMA()

out = {"symlog": symlog(torch.tensor([-10.0, -0.5, 0.0, 2.0, 100.0])).tolist()}
d = DiscDist(torch.from_numpy(rng.standard_normal((2, 1, bins)).astype(np.float32)))
out["disc_mean"] = d.mean().flatten().tolist()
out["disc_logp"] = d.log_prob(torch.tensor([[[0.3]], [[-4.0]]])).flatten().tolist()

hist = {"wm": [], "actor": [], "critic": [], "ret": [], "ema": []}
for step in range(4):
    obs = torch.from_numpy(rng.standard_normal((B, T, obs_dim)).astype(np.float32))
    action = F.one_hot(torch.from_numpy(rng.integers(0, A, (B, T))), A).float()
    reward = torch.from_numpy(rng.standard_normal((B, T)).astype(np.float32))
    is_first = torch.zeros(B, T, dtype=torch.bool)
    is_first[:, 0] = True
    cont = torch.ones(B, T)
    uniforms = torch.from_numpy(rng.uniform(1e-6, 1 - 1e-6, (T, B, 4, 4)).astype(np.float32))

    embed = encoder(obs)
    post, prior = rssm.observe(embed, action, is_first, uniforms)
    kl_loss, kl_value, dyn_loss, rep_loss = rssm.kl_loss(post, prior, 1.0, 0.5, 0.1)
    feat = rssm.get_feat(post)
    rec_loss = -torchd.Independent(torchd.Normal(decoder(feat), 1.0), 1).log_prob(obs)
    rew_loss = -DiscDist(reward_head(feat)).log_prob(reward.unsqueeze(-1))
    cont_loss = -torchd.Bernoulli(logits=cont_head(feat).squeeze(-1)).log_prob(cont)
    model_loss = (rec_loss + rew_loss + cont_loss + kl_loss).mean()
    wm_opt.zero_grad()
    model_loss.backward()
    torch.nn.utils.clip_grad_norm_(wm_params, 1000.0)
    wm_opt.step()
    hist["wm"].append([model_loss.item(), kl_value.mean().item(), dyn_loss.mean().item()])

    # imagination from the posteriors, world model frozen
    for p in wm_params:
        p.requires_grad_(False)
    start = {k: v.detach().reshape(-1, *v.shape[2:]) for k, v in post.items()}
    state, feats, actions, logps, ents = start, [], [], [], []
    for h in range(H):
        f_t = rssm.get_feat(state)
        pol = OneHotDist(logits=actor(f_t.detach()), unimix_ratio=0.01)
        u = torch.from_numpy(rng.uniform(1e-6, 1 - 1e-6, (B * T, A)).astype(np.float32))
        a_t = pol.sample_with(u)
        feats.append(f_t)
        actions.append(a_t)
        logps.append(pol.log_prob(a_t.detach().round()))  # ST sums leave 1 +- ulp
        ents.append(pol.entropy())
        u2 = torch.from_numpy(rng.uniform(1e-6, 1 - 1e-6, (B * T, 4, 4)).astype(np.float32))
        state = rssm.img_step(state, a_t, u2)
    imag_feat = torch.stack(feats, 0)
    rew = DiscDist(reward_head(imag_feat)).mode().squeeze(-1)
    disc = 0.99 * torch.sigmoid(cont_head(imag_feat)).squeeze(-1)
    value = DiscDist(critic(imag_feat)).mode().squeeze(-1)
    target = lambda_return(rew[1:], value[:-1], disc[1:], bootstrap=value[-1], lambda_=0.95,
                           axis=0)
    weights = torch.cumprod(torch.cat([torch.ones_like(disc[:1]), disc[:-1]], 0), 0).detach()
    offset, scale = reward_ema(target)
    normed_target = (target - offset) / scale
    normed_base = (value[:-1] - offset) / scale
    adv = normed_target - normed_base
    logp = torch.stack(logps, 0)[:-1]
    ent = torch.stack(ents, 0)[:-1]
    actor_target = 0.5 * logp * adv.detach() + 0.5 * adv  # REINFORCE + dynamics backprop
    actor_loss = -(weights[:-1] * (actor_target + 3e-4 * ent)).mean()
    actor_opt.zero_grad()
    critic_opt.zero_grad()
    actor_loss.backward(retain_graph=True)
    actor_opt.step()

    v_dist = DiscDist(critic(imag_feat[:-1].detach()))
    slow_target = DiscDist(slow_critic(imag_feat[:-1].detach())).mode().squeeze(-1)
    value_loss = -v_dist.log_prob(target.detach().unsqueeze(-1))
    value_loss = value_loss - v_dist.log_prob(slow_target.detach().unsqueeze(-1))
    critic_loss = (weights[:-1] * value_loss).mean()
    critic_loss.backward()
    torch.nn.utils.clip_grad_norm_(critic.parameters(), 100.0)
    critic_opt.step()
    with torch.no_grad():
        for s, d in zip(slow_critic.parameters(), critic.parameters()):
            s.data = 0.02 * d.data + (1 - 0.02) * s.data
    for p in wm_params:
        p.requires_grad_(True)
    hist["actor"].append([actor_loss.item(), ent.mean().item()])
    hist["critic"].append(critic_loss.item())
    hist["ret"].append([target.mean().item(), target.std().item()])
    hist["ema"].append(reward_ema.ema_vals.tolist())

out.update(hist)
report(**out)
