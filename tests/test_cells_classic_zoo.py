"""The long-memory cells and the LSTM variants against independent references.

* Outputs: a maintained package with the weights mapped across where one installs on CPU
  (PyTorch's ``nn.LSTM(proj_size=...)`` for LSTMP, memax's MGU), otherwise a float64 NumPy loop
  that transcribes the paper's equations (written from the papers, not from the cell code;
  ``scipy.linalg.expm`` for expRNN's matrix exponential). Float32 outputs agree to 1e-5.
* Gradients: ``jax.grad`` of the cell against central finite differences in float64
  (``jax.test_util.check_grads``), or against the reference package's own gradients.
* A behavioural check from each paper where one runs in seconds.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.linalg
from jax.test_util import check_grads

import seqjax
from seqjax import analysis

B, T, I, H = 2, 7, 3, 4
TOL = 1e-5


def sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def normal(seed, shape, scale=1.0):
    """Gaussian test data from NumPy (each new ``jax.random`` shape compiles on first use)."""
    return jnp.asarray(scale * np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def perturbed(cell, key=0, scale=0.3, input_size=I):
    """Initial parameters plus noise, so that zero-initialised terms are exercised too."""
    params = cell.init(jax.random.key(key), input_size)
    return jax.tree.map(lambda a: a + normal(key + 7, a.shape, scale).astype(a.dtype), params)


def inputs(key=1, batch=B, steps=T, size=I, scale=1.0):
    return normal(key, (batch, steps, size), scale)


def np64(tree):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)


def assert_outputs(cell, params, xs, reference):
    """``seqjax.unroll`` in float32 against ``reference(params64, xs64) -> ys (B, T, H)``."""
    ys, _ = seqjax.unroll(cell, params, xs)
    np.testing.assert_allclose(ys, reference(np64(params), np64(xs)), rtol=TOL, atol=TOL)


def assert_gradients(cell, params, xs, steps=3):
    """``jax.grad`` against central finite differences, in float64, over a few steps."""
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        x64 = jnp.asarray(xs[:, :steps], jnp.float64)

        def loss(p, x):
            ys, carry = seqjax.unroll(cell, p, x, backend="sequential")
            return jnp.sum(jnp.sin(ys)) + sum(jnp.sum(c**2) for c in jax.tree.leaves(carry))

        check_grads(jax.jit(loss), (p64, x64), order=1, modes=["rev"], atol=TOL, rtol=TOL)


def over_time(xs, carry0, step):
    """``ys (B, T, H)`` of ``carry, y = step(carry, x_t)`` in float64 NumPy."""
    carry, ys = carry0, []
    for t in range(xs.shape[1]):
        carry, y = step(carry, xs[:, t])
        ys.append(y)
    return np.stack(ys, 1)


# LSTM variants ----------------------------------------------------------------------------------


def layer_norm_np(a, alpha, beta, eps=1e-5):
    mu = a.mean(-1, keepdims=True)
    return alpha * (a - mu) / np.sqrt(((a - mu) ** 2).mean(-1, keepdims=True) + eps) + beta


def lstm_np(p, xs, peephole=False, ln=False, proj=False):
    """Gers et al. 2002 (peepholes), Ba et al. 2016 (LN-LSTM), Sak et al. 2014 (projection)."""
    n_cells = p["b"].shape[0] // 4
    r_size = p["w_hr"].shape[1] if proj else n_cells

    def step(carry, x):
        r, c = carry
        a_x, a_r = x @ p["w_x"], r @ p["w_h"]
        if ln:
            a_x = layer_norm_np(a_x, p["alpha_x"], p["beta_x"])
            a_r = layer_norm_np(a_r, p["alpha_h"], p["beta_h"])
        i, f, g, o = np.split(a_x + a_r + p["b"], 4, -1)
        if peephole:
            i, f = i + p["w_ci"] * c, f + p["w_cf"] * c
        c = sig(f) * c + sig(i) * np.tanh(g)
        if peephole:
            o = o + p["w_co"] * c
        m = sig(o) * np.tanh(layer_norm_np(c, p["alpha_c"], p["beta_c"]) if ln else c)
        r = m @ p["w_hr"] if proj else m
        return (r, c), r

    zeros = np.zeros((xs.shape[0], n_cells))
    return over_time(xs, (np.zeros((xs.shape[0], r_size)), zeros), step)


def test_plain_lstm_is_unchanged_by_the_options():
    plain = seqjax.cells.lstm(H)
    assert sorted(plain.init(jax.random.key(0), I)) == ["b", "w_h", "w_x"]
    assert plain.fused is not None
    for options in ({"peephole": True}, {"layer_norm": True}, {"proj_size": 2}):
        assert seqjax.cells.lstm(H, **options).fused is None


@pytest.mark.parametrize(
    "options",
    [pytest.param({"peephole": True}, marks=pytest.mark.slow),
     pytest.param({"layer_norm": True}, marks=pytest.mark.slow),
     {"peephole": True, "layer_norm": True, "proj_size": 3}],  # all three: always
)  # fmt: skip
def test_lstm_variants_against_numpy(options):
    cell = seqjax.cells.lstm(H, **options)
    params, xs = perturbed(cell), inputs()
    ref = lambda p, x: lstm_np(  # noqa: E731
        p,
        x,
        options.get("peephole", False),
        options.get("layer_norm", False),
        "proj_size" in options,
    )
    assert_outputs(cell, params, xs, ref)
    assert_gradients(cell, params, xs)


@pytest.mark.parametrize("proj_size", [pytest.param(None, marks=pytest.mark.slow), 2])
def test_lstmp_against_torch(proj_size):
    torch = pytest.importorskip(
        "torch", reason="PyTorch is the reference for LSTMP (pip install torch)"
    )
    torch.manual_seed(0)
    kw = {} if proj_size is None else {"proj_size": proj_size}
    ref = torch.nn.LSTM(I, H, batch_first=True, **kw).double()
    tp = {k: v.detach().numpy() for k, v in ref.named_parameters()}
    params = {
        "w_x": tp["weight_ih_l0"].T,
        "w_h": tp["weight_hh_l0"].T,
        "b": tp["bias_ih_l0"] + tp["bias_hh_l0"],
    }
    if proj_size is not None:
        params["w_hr"] = tp["weight_hr_l0"].T
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
    cell = seqjax.cells.lstm(H, proj_size=proj_size)
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(
        jnp.shape, cell.init(jax.random.key(0), I)
    )
    xs = inputs()
    x_t = torch.tensor(np.asarray(xs, np.float64), requires_grad=True)
    y_t, _ = ref(x_t)
    torch.sin(y_t).sum().backward()
    ys = seqjax.unroll(cell, params, xs)[0]
    np.testing.assert_allclose(ys, y_t.detach().numpy(), rtol=TOL, atol=TOL)
    grads = jax.grad(lambda p, x: jnp.sum(jnp.sin(seqjax.unroll(cell, p, x)[0])), (0, 1))(
        params, xs
    )
    g = {k: v.grad.numpy() for k, v in ref.named_parameters()}
    np.testing.assert_allclose(grads[1], x_t.grad.numpy(), rtol=TOL, atol=TOL)
    np.testing.assert_allclose(grads[0]["w_x"], g["weight_ih_l0"].T, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(grads[0]["w_h"], g["weight_hh_l0"].T, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(grads[0]["b"], g["bias_ih_l0"], rtol=TOL, atol=TOL)
    if proj_size is not None:
        np.testing.assert_allclose(grads[0]["w_hr"], g["weight_hr_l0"].T, rtol=TOL, atol=TOL)


def test_lstmp_gates_and_blocks():
    cell = seqjax.cells.lstm(H, proj_size=2, peephole=True)
    params, xs = perturbed(cell), inputs()
    gates = analysis.gate_values(cell, params, xs)
    assert set(gates) == {"input", "forget", "output"} and gates["forget"].shape == (B, T, H)
    blocks = cell.recurrent_blocks(params)
    np.testing.assert_allclose(blocks["f"], params["w_hr"] @ params["w_h"][:, H : 2 * H], rtol=1e-6)


# IndRNN -----------------------------------------------------------------------------------------


def indrnn_np(p, xs, act=lambda v: np.maximum(v, 0)):
    """Li et al. 2018, eq. 2: h_t = sigma(W x_t + u * h_{t-1} + b)."""

    def step(h, x):
        h = act(x @ p["w"] + p["u"] * h + p["b"])
        return h, h

    return over_time(xs, np.zeros((xs.shape[0], p["u"].shape[0])), step)


@pytest.mark.parametrize("activation", ["relu", pytest.param("tanh", marks=pytest.mark.slow)])
def test_indrnn_against_numpy(activation):
    cell = seqjax.cells.indrnn(H, activation, u_init="memory")
    params, xs = perturbed(cell), inputs()
    act = np.tanh if activation == "tanh" else (lambda v: np.maximum(v, 0))
    assert_outputs(cell, params, xs, lambda p, x: indrnn_np(p, x, act))
    assert_gradients(cell, params, xs)


@pytest.mark.parametrize("init", ["bounded", "memory"])
def test_indrnn_memory_length_follows_the_weight_bound(init):
    """Sec. 3.1: an active ReLU unit carries a gradient over T steps by u^T; the "memory" range
    keeps it in [1/gamma, gamma] over ``memory_length`` steps, "bounded" only below gamma."""
    steps, gamma, units = 50, 2.0, 64
    cell = seqjax.cells.indrnn(units, memory_length=steps, gradient_bound=gamma, u_init=init)
    params = cell.init(jax.random.key(0), 2)
    params = dict(params, b=jnp.full((units,), 5.0))  # every unit active (relu' = 1)
    xs = 0.1 * inputs(batch=1, steps=steps, size=2)[0]

    def final(h0):
        return seqjax.unroll(cell, params, xs, h0, backend="sequential")[1]

    jac = jax.jacrev(final)(jnp.ones(units))
    u = np.asarray(params["u"], np.float64)
    np.testing.assert_allclose(np.diag(jac), u**steps, rtol=1e-4, atol=1e-30)  # float32 underflow
    np.testing.assert_allclose(jac - np.diag(np.diag(jac)), 0.0)  # units are independent
    factors = np.diag(jac)
    assert factors.max() <= gamma * (1 + 1e-5)
    if init == "memory":
        assert factors.min() >= (1 / gamma) * (1 - 1e-5)
    else:
        assert factors.min() < 1e-3  # some units forget: the range starts at 0


def test_bad_options_name_the_value():
    with pytest.raises(ValueError, match="u_init='orthogonal': IndRNN's recurrent weight"):
        seqjax.cells.indrnn(4, u_init="orthogonal")
    with pytest.raises(ValueError, match="num_negative=2: only the Cayley"):
        seqjax.cells.exprnn(4, num_negative=2)
    with pytest.raises(ValueError, match="skew_init='orthogonal': choose one of cayley"):
        seqjax.cells.exprnn(4, skew_init="orthogonal")
    with pytest.raises(ValueError, match="dt=1.5"):
        seqjax.cells.lem(4, dt=1.5)
    with pytest.raises(ValueError, match="solver='rk4'"):
        seqjax.cells.lipschitz(4, solver="rk4")
    with pytest.raises(ValueError, match="proj_size=0"):
        seqjax.cells.lstm(4, proj_size=0)


# MGU --------------------------------------------------------------------------------------------


def mgu_np(p, xs):
    """Zhou et al. 2016, sec. 3."""
    n = p["b"].shape[0] // 2

    def step(h, x):
        f = sig(x @ p["w_x"][:, :n] + h @ p["w_h"][:, :n] + p["b"][:n])
        h_tilde = np.tanh(x @ p["w_x"][:, n:] + (f * h) @ p["w_h"][:, n:] + p["b"][n:])
        h = (1 - f) * h + f * h_tilde
        return h, h

    return over_time(xs, np.zeros((xs.shape[0], n)), step)


def test_mgu_against_numpy():
    cell = seqjax.cells.mgu(H)
    params, xs = perturbed(cell), inputs()
    assert_outputs(cell, params, xs, mgu_np)
    assert_gradients(cell, params, xs)


def test_mgu_against_memax():
    pytest.importorskip("memax", reason="memax (pip install memax) is the reference for the MGU")
    eqx = pytest.importorskip("equinox", reason="memax's MGU is an equinox module")
    from memax.equinox.set_actions.mgu import MGUSetAction

    action = MGUSetAction(H, key=jax.random.key(3))  # memax's MGU maps H inputs to H units
    cell = seqjax.cells.mgu(H)
    params = {
        "w_x": jnp.concatenate([action.W_f.weight.T, action.W_h.weight.T], -1),
        "w_h": jnp.concatenate([action.U_f.weight.T, action.U_h.weight.T], -1),
        "b": jnp.concatenate([action.W_f.bias, action.W_h.bias]),
    }
    xs = inputs(size=H)[0]  # memax steps one unbatched sequence

    def memax_loss(p):
        module = eqx.tree_at(
            lambda a: (a.W_f.weight, a.W_h.weight, a.U_f.weight, a.U_h.weight, a.W_f.bias,
                       a.W_h.bias),
            action,
            (p["w_x"][:, :H].T, p["w_x"][:, H:].T, p["w_h"][:, :H].T, p["w_h"][:, H:].T,
             p["b"][:H], p["b"][H:]),
        )  # fmt: skip
        h, ys = jnp.zeros(H), []
        for t in range(T):
            h = module(h, xs[t])
            ys.append(h)
        return jnp.stack(ys)

    def ours(p):
        return seqjax.unroll(cell, p, xs)[0]

    np.testing.assert_allclose(ours(params), memax_loss(params), rtol=TOL, atol=TOL)
    loss = lambda f: lambda p: jnp.sum(jnp.sin(f(p)))  # noqa: E731
    g_ref, g = jax.grad(loss(memax_loss))(params), jax.grad(loss(ours))(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL), g, g_ref)


# expRNN and scoRNN ------------------------------------------------------------------------------


def orthogonal_np(a, parametrization, num_negative=0):
    """Lezcano-Casado & Martinez-Rubio 2019: expm(A); Helfrich et al. 2018: (I + A)^-1 (I - A) D."""
    upper = np.triu(a, 1)
    A = upper - upper.T
    if parametrization == "expm":
        return scipy.linalg.expm(A)
    n = a.shape[0]
    D = np.diag(np.r_[np.ones(n - num_negative), -np.ones(num_negative)])
    return np.linalg.inv(np.eye(n) + A) @ (np.eye(n) - A) @ D


def exprnn_np(p, xs, parametrization, num_negative=0):
    W = orthogonal_np(p["a"], parametrization, num_negative)

    def step(h, x):
        z = h @ W + x @ p["w_x"]
        h = np.sign(z) * np.maximum(np.abs(z) + p["b"], 0)  # modReLU
        return h, h

    return over_time(xs, np.zeros((xs.shape[0], W.shape[0])), step)


@pytest.mark.parametrize(
    "parametrization, num_negative, init",
    [
        ("expm", 0, "cayley"),
        pytest.param("expm", 0, "henaff", marks=pytest.mark.slow),
        pytest.param("cayley", 0, "cayley", marks=pytest.mark.slow),
        ("cayley", 2, "zeros"),
    ],
)
def test_exprnn_against_numpy(parametrization, num_negative, init):
    cell = seqjax.cells.exprnn(
        H, parametrization=parametrization, num_negative=num_negative, skew_init=init
    )
    params, xs = perturbed(cell), inputs()
    assert_outputs(cell, params, xs, lambda p, x: exprnn_np(p, x, parametrization, num_negative))
    assert_gradients(cell, params, xs)


@pytest.mark.parametrize("init", ["cayley", "henaff"])
def test_exprnn_initial_rotations(init):
    """The 2x2 blocks of A: angles theta in (0, pi/2) (Cayley init) or s in (-pi, pi) (Henaff)."""
    cell = seqjax.cells.exprnn(64, skew_init=init)
    a = np.asarray(cell.init(jax.random.key(0), 2)["a"], np.float64)
    s = np.diag(a, 1)[::2]
    assert np.count_nonzero(a) == np.count_nonzero(s) == 32
    if init == "henaff":
        assert s.min() >= -math.pi and s.max() <= math.pi and s.min() < -2 and s.max() > 2
    else:
        theta = np.arccos((1 - s**2) / (1 + s**2))  # inverts s = -sqrt((1 - cos)/(1 + cos))
        assert (s < 0).all() and theta.max() <= math.pi / 2 + 1e-6 and theta.max() > 1.2
        w = orthogonal_np(a, "cayley")
        eig = np.angle(np.linalg.eigvals(w))
        assert np.abs(eig).max() <= math.pi / 2 + 1e-6  # W's eigenvalues e^{+-i theta}


@pytest.mark.parametrize(
    "parametrization", ["expm", pytest.param("cayley", marks=pytest.mark.slow)]
)
def test_exprnn_stays_orthogonal_through_training(parametrization):
    """300 Adam steps on a toy regression: W^T W = I to 1e-5 throughout, and ``a`` has moved."""
    cell = seqjax.cells.exprnn(
        8, parametrization=parametrization, num_negative=2 if parametrization == "cayley" else 0
    )
    params = cell.init(jax.random.key(0), 3)
    xs, target = inputs(batch=8, steps=10), normal(2, (8, 8))
    opt = optax.adam(1e-2)

    def loss(p):
        return jnp.mean((seqjax.unroll(cell, p, xs)[1] - target) ** 2)

    @jax.jit
    def train(p, state):
        def one(carry, _):
            p, state = carry
            g = jax.grad(loss)(p)
            updates, state = opt.update(g, state, p)
            p = optax.apply_updates(p, updates)
            w = cell.recurrent_blocks(p)["h"]
            return (p, state), jnp.max(jnp.abs(w.T @ w - jnp.eye(8)))

        return jax.lax.scan(one, (p, state), None, length=300)

    with jax.numpy_dtype_promotion("standard"):  # optax's Adam mixes int32 counts and floats
        (trained, _), errors = train(params, opt.init(params))
    assert float(errors.max()) < 1e-5
    assert float(jnp.abs(trained["a"] - params["a"]).max()) > 0.1
    assert float(loss(trained)) < 0.9 * float(loss(params))


def test_exprnn_gradient_does_not_decay_with_distance():
    """At init the step Jacobians are orthogonal up to modReLU's rare zeros: ||dh_T/dh_t|| stays
    near 1 over 100 steps, where an orthogonally initialised tanh RNN's decays (the motivation of
    Arjovsky et al. 2016 and Lezcano-Casado & Martinez-Rubio 2019)."""
    xs = inputs(batch=2, steps=100, size=3)
    exp = seqjax.cells.exprnn(16)
    tanh = seqjax.cells.elman(16)
    norms = {}
    for name, cell in (("exprnn", exp), ("elman", tanh)):
        jp = analysis.jacobian_products(cell, cell.init(jax.random.key(0), 3), xs)
        norms[name] = np.asarray(jp.singular_values[..., 0])  # (B, T+1), distance k = 0..T
    assert norms["exprnn"].min() > 0.9 and norms["exprnn"].max() < 1 + 1e-4
    assert norms["elman"][:, -1].max() < 1e-2


# AntisymmetricRNN -------------------------------------------------------------------------------


def antisymmetric_np(p, xs, eps, gamma, gated):
    """Chang et al. 2019, sec. 3: h <- h + eps tanh(M h + V x + b), in row-vector form (the
    paper's column-vector M h is h M^T, the same family with W_h = w^T)."""
    n = p["w"].shape[0]
    M = p["w"] - p["w"].T - gamma * np.eye(n)

    def step(h, x):
        pre = h @ M
        a = pre + x @ p["v"][:, :n] + p["b"][:n]
        if gated:
            z = sig(pre + x @ p["v"][:, n:] + p["b"][n:])
            h = h + eps * z * np.tanh(a)
        else:
            h = h + eps * np.tanh(a)
        return h, h

    return over_time(xs, np.zeros((xs.shape[0], n)), step)


@pytest.mark.parametrize("gated", [pytest.param(False, marks=pytest.mark.slow), True])
def test_antisymmetric_against_numpy(gated):
    eps, gamma = 0.3, 0.05
    cell = seqjax.cells.antisymmetric(H, step_size=eps, diffusion=gamma, gated=gated)
    params, xs = perturbed(cell), inputs()
    assert_outputs(cell, params, xs, lambda p, x: antisymmetric_np(p, x, eps, gamma, gated))
    assert_gradients(cell, params, xs)


def test_antisymmetric_spectrum_and_non_dissipative_jacobians():
    """Sec. 3: the eigenvalues of M = W - W^T - gamma I have real part -gamma, so with small eps
    the Jacobian products neither explode nor vanish over many steps."""
    cell = seqjax.cells.antisymmetric(16, step_size=0.01, diffusion=0.0, recurrent_std=3.0)
    params = cell.init(jax.random.key(0), 3)
    m = np.asarray(cell.recurrent_blocks(params)["h"], np.float64)
    np.testing.assert_allclose(np.linalg.eigvals(m).real, 0.0, atol=1e-5)
    shifted = seqjax.cells.antisymmetric(16, diffusion=0.2).recurrent_blocks(params)["h"]
    np.testing.assert_allclose(np.linalg.eigvals(np.asarray(shifted, np.float64)).real, -0.2, 1e-5)
    sv = np.asarray(analysis.jacobian_products(cell, params, inputs(steps=100)).singular_values)
    assert sv[:, -1].min() > 0.5 and sv[:, -1].max() < 2.0


# coRNN ------------------------------------------------------------------------------------------


def cornn_np(p, xs, dt, gamma, eps, implicit):
    """Rusch & Mishra 2021, sec. 2: the IMEX scheme (or the authors' explicit damping)."""
    n = p["w"].shape[0]

    def step(carry, x):
        y, z = carry
        force = np.tanh(y @ p["w"] + z @ p["w_z"] + x @ p["v"] + p["b"])
        if implicit:
            z = (z + dt * force - dt * gamma * y) / (1 + dt * eps)
        else:
            z = z + dt * force - dt * gamma * y - dt * eps * z
        y = y + dt * z
        return (y, z), y

    zeros = np.zeros((xs.shape[0], n))
    return over_time(xs, (zeros, zeros), step)


@pytest.mark.parametrize("implicit", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_cornn_against_numpy(implicit):
    dt, gamma, eps = 0.2, 2.7, 4.7
    cell = seqjax.cells.cornn(H, dt=dt, stiffness=gamma, damping=eps, implicit_damping=implicit)
    params, xs = perturbed(cell), inputs()
    assert_outputs(cell, params, xs, lambda p, x: cornn_np(p, x, dt, gamma, eps, implicit))
    assert_gradients(cell, params, xs)


def test_cornn_hidden_states_and_gradients_stay_bounded():
    """Sec. 3: coRNN's hidden states and its gradients are bounded independently of the length;
    over 2000 steps of large inputs neither the states nor dy_T/d(y_0, z_0) blow up."""
    cell = seqjax.cells.cornn(8)
    params = cell.init(jax.random.key(0), 3)
    xs = inputs(batch=1, steps=2000, scale=10.0)[0]
    _, _, carries = seqjax.unroll(cell, params, xs, return_carries=True)
    assert float(jnp.abs(carries.y).max()) < 1.0 and float(jnp.abs(carries.z).max()) < 1.0
    jac = jax.jacrev(lambda c: seqjax.unroll(cell, params, xs, c, backend="sequential")[1].y)(
        cell.initial_carry(params, ())
    )
    assert all(np.isfinite(np.asarray(j)).all() and np.abs(j).max() < 10 for j in jac)


# Lipschitz RNN ----------------------------------------------------------------------------------


def lipschitz_np(p, xs, beta, gamma_a, gamma_w, eps, solver):
    """Erichson et al. 2021, sec. 3: h' = A h + tanh(W h + U x + b), Euler or explicit midpoint."""
    n = p["m_a"].shape[0]

    def mat(m, g):
        return (1 - beta) * (m + m.T) + beta * (m - m.T) - g * np.eye(n)

    A, W = mat(p["m_a"], gamma_a), mat(p["m_w"], gamma_w)

    def step(h, x):
        f = lambda h: h @ A + np.tanh(h @ W + x @ p["u"] + p["b"])  # noqa: E731
        h = h + eps * (f(h) if solver == "euler" else f(h + eps / 2 * f(h)))
        return h, h

    return over_time(xs, np.zeros((xs.shape[0], n)), step)


@pytest.mark.parametrize("solver", ["euler", pytest.param("midpoint", marks=pytest.mark.slow)])
def test_lipschitz_against_numpy(solver):
    beta, ga, gw, eps = 0.6, 0.1, 0.2, 0.4
    cell = seqjax.cells.lipschitz(
        H, beta=beta, gamma_a=ga, gamma_w=gw, step_size=eps, solver=solver
    )
    params, xs = perturbed(cell), inputs()
    assert_outputs(cell, params, xs, lambda p, x: lipschitz_np(p, x, beta, ga, gw, eps, solver))
    assert_gradients(cell, params, xs)


# LEM --------------------------------------------------------------------------------------------


def lem_np(p, xs, dt):
    """Rusch et al. 2022, sec. 2, eq. 3."""
    n = p["w_y"].shape[0]
    v = np.split(p["v"], 4, -1)
    b = np.split(p["b"], 4)
    w = np.split(p["w"], 3, -1)

    def step(carry, u):
        y, z = carry
        dt_n = dt * sig(y @ w[0] + u @ v[0] + b[0])
        dt_bar = dt * sig(y @ w[1] + u @ v[1] + b[1])
        z = (1 - dt_n) * z + dt_n * np.tanh(y @ w[2] + u @ v[2] + b[2])
        y = (1 - dt_bar) * y + dt_bar * np.tanh(z @ p["w_y"] + u @ v[3] + b[3])
        return (y, z), y

    zeros = np.zeros((xs.shape[0], n))
    return over_time(xs, (zeros, zeros), step)


@pytest.mark.parametrize("dt", [pytest.param(1.0, marks=pytest.mark.slow), 0.3])
def test_lem_against_numpy(dt):
    cell = seqjax.cells.lem(H, dt=dt)
    params, xs = perturbed(cell), inputs()
    assert_outputs(cell, params, xs, lambda p, x: lem_np(p, x, dt))
    assert_gradients(cell, params, xs)


def test_lem_states_stay_in_the_unit_box():
    """Sec. 3: with dt <= 1 each update is a convex combination of the old state and a tanh, so
    |y_n|, |z_n| <= 1 for any input, however large."""
    cell = seqjax.cells.lem(16)
    params = perturbed(cell, scale=1.0)
    xs = inputs(steps=200, scale=100.0)
    _, _, carries = seqjax.unroll(cell, params, xs, return_carries=True)
    assert float(jnp.abs(carries.y).max()) <= 1.0 and float(jnp.abs(carries.z).max()) <= 1.0
    assert float(jnp.abs(carries.y).max()) > 0.5  # and the bound is not vacuous here


# Where model.cell goes --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["indrnn", "mgu", "exprnn", "antisymmetric", "cornn", "lipschitz", "lem"]
)
def test_new_cells_run_in_the_synthetic_task_with_diagnostics(name):
    """``model.cell=<name>`` in a real config: the task builds, and the diagnostics report what the
    cell declares (gates, recurrent blocks), with no change outside the cell."""
    from test_synthetic import smoke_config

    from seqjax.tasks import synthetic

    task = synthetic.build(smoke_config(**{"model.cell": name}))
    d = task.diagnose(task.init(jax.random.key(0)))
    cell = seqjax.cells.get(name, 4)
    assert np.isfinite(np.asarray(d["grad_h"])).all() and np.isfinite(float(d["loss"]))
    assert ("spectral_radius" in d) == (cell.recurrent_blocks is not None)
    assert any(k.startswith("gate/") for k in d) == (cell.gates is not None)
