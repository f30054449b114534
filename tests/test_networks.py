"""Shallow networks: generated activations vs autograd, analytic Jacobian and tangent kernel vs
autograd, the closed-form linearized model vs explicit gradient descent, and training errors."""

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch

import theory
from numerics.networks import (Init, LinearizedSolution, ShallowNetwork, as_tensor, linearized_solution,
                               train)
from numerics.torch_activation import ARRAYS, sigma_and_slope, torch_activation, torch_sigma_and_slope
from numerics.training import TrainingDiverged, array_descent, gradient_descent
from theory.activations import BUILTINS
from theory.errors import IbcheckError

torch.set_num_threads(1)

X1 = np.array([-0.8, -0.5, -0.1, 0.2, 0.45, 0.8])
Y1 = np.array([0.3, -0.4, 0.5, 0.1, -0.6, 0.2])
CONTINUOUS = [n for n in BUILTINS if n != "step"]


@pytest.mark.parametrize("name", CONTINUOUS)
def test_generated_derivative_matches_autograd(name):
    act = theory.activation(name)
    # points away from the kink at 0 (ReLU-type sigma' jumps there); |u| <= 8 keeps exp moderate
    u = torch.linspace(-8, 8, 402, dtype=torch.float64)[1:-1]
    u = u[u.abs() > 1e-3].clone().requires_grad_(True)
    sigma = torch_activation(act)
    (auto,) = torch.autograd.grad(sigma(u).sum(), u)
    np.testing.assert_allclose(torch_activation(act, 1)(u.detach()).numpy(), auto.numpy(), rtol=1e-12, atol=1e-12)


def test_generated_activation_matches_sympy_values():
    for name in ("relu", "tanh", "gelu", "softplus", "elu"):
        act = theory.activation(name)
        u = np.linspace(-5, 5, 41)
        np.testing.assert_allclose(torch_activation(act)(torch.tensor(u)).numpy(), act.numeric("numpy")(u),
                                   rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("kind", ["uniform", "gaussian", "directions"])
def test_initializations_respect_their_ranges(kind):
    init = Init(kind, a_w=0.5, a_b=2.0, rho=3.0, offset=4.0)
    net = ShallowNetwork(theory.activation("relu"), 4000, 2, init, seed=3)
    rs = net.rs_coordinates()
    if kind == "uniform":
        assert net.w.abs().max() <= 0.5 and net.b.abs().max() <= 2.0
    if kind == "directions":
        np.testing.assert_allclose(rs["rho"], 3.0, rtol=1e-14)
        assert np.all(np.abs(rs["beta"]) <= 4.0)
    # w.x + b = rho (theta.x - beta) for every neuron (RS coordinates, notes 1.3)
    x = np.array([[0.3, -1.2], [2.0, 0.5]])
    direct = (as_tensor(x) @ net.w.T + net.b).detach().numpy()
    rs_form = rs["rho"] * (x @ rs["theta"].T - rs["beta"])
    np.testing.assert_allclose(direct, rs_form, atol=1e-12)


def test_antisymmetric_initialization_starts_at_zero_and_ntk_scale():
    net = ShallowNetwork(theory.activation("tanh"), 100, 1, Init("gaussian", s_v=1.0, antisymmetric=True), "ntk")
    assert float(net.evaluate(as_tensor(X1)).abs().max()) < 1e-15
    assert net.output_scale == pytest.approx(np.sqrt(0.5) / 10)


@pytest.mark.parametrize("name,dim", [("relu", 1), ("tanh", 2), ("gelu", 3)])
def test_jacobian_and_tangent_kernel_match_autograd(name, dim):
    net = ShallowNetwork(theory.activation(name), 7, dim, Init("gaussian", s_v=1.0), "ntk", seed=1)
    x = as_tensor(np.random.default_rng(0).normal(size=(5, dim)))

    out = net(x)
    rows = [torch.autograd.grad(out[j], net.parameters, retain_graph=True) for j in range(len(x))]
    auto = torch.stack([torch.cat([gv, gw.reshape(-1), gb]) for gv, gw, gb in rows])
    torch.testing.assert_close(net.jacobian(x), auto, rtol=1e-12, atol=1e-14)
    rates = (0.3, 2.0, 5.0)  # per-layer step sizes weight the kernel
    blocks = [auto[:, :7], auto[:, 7:7 + 7 * dim], auto[:, 7 + 7 * dim:]]
    expected = sum(r * b @ b.T for r, b in zip(rates, blocks))
    torch.testing.assert_close(net.tangent_kernel(x, x, "all", rates), expected, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(net.tangent_kernel(x, x, "output"), blocks[0] @ blocks[0].T, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("layers, parameterization", [("output", "standard"), ("all", "ntk")])
def test_tangent_kernel_in_blocks_is_each_subnetworks_kernel(layers, parameterization):
    """``block=b``: the kernels of the sub-networks of b consecutive neurons (blocks spanning several
    CHUNKs and ending inside one, the NTK scale taken at the block's width), bit for bit what each
    sub-network's own call gives; a block that does not divide the width is an error."""
    from numerics import networks

    block = networks.CHUNK + 300
    net = ShallowNetwork(theory.activation("gelu"), 3 * block, 2, Init("gaussian", s_v=1.0), parameterization, 4)
    x1 = as_tensor(np.random.default_rng(2).normal(size=(7, 2)))
    blocks = net.tangent_kernel(x1, x1[:3], layers, block=block)
    assert blocks.shape == (3, 7, 3)
    for k in range(3):
        own = net.subnetwork(slice(k * block, (k + 1) * block)).tangent_kernel(x1, x1[:3], layers)
        assert torch.equal(blocks[k], own)
    assert torch.equal(net.tangent_kernel(x1, x1[:3], layers, block=net.width)[0], net.tangent_kernel(x1, x1[:3], layers))
    with pytest.raises(IbcheckError, match="do not divide"):
        net.tangent_kernel(x1, x1, layers, block=block + 1)


def test_kernel_descent_weights_of_a_batch_are_each_matrixs():
    """A batch of Gram matrices gives each matrix's weights bit for bit (infinite time and T steps); a
    singular matrix in the batch is named by its eigenvalues."""
    from numerics.networks import kernel_descent_weights

    rng = np.random.default_rng(7)
    features = torch.as_tensor(rng.normal(size=(2, 3, 5, 40)))
    grams = features @ features.mT / 40
    residual = torch.as_tensor(rng.normal(size=5))
    for steps in (None, 25):
        batch = kernel_descent_weights(grams, residual, steps)
        assert batch.shape == (2, 3, 5)
        for i in range(2):
            for j in range(3):
                assert torch.equal(batch[i, j], kernel_descent_weights(grams[i, j], residual, steps))
    singular = grams.clone()
    singular[1, 2] = features[1, 2, :, :1] @ features[1, 2, :, :1].T  # rank 1
    with pytest.raises(IbcheckError, match="singular"):
        kernel_descent_weights(singular, residual)


def test_linearized_solution_after_t_steps_matches_explicit_descent():
    """Independent route: gradient descent on the linear model theta -> f_0 + J (theta - theta_0)."""
    net = ShallowNetwork(theory.activation("tanh"), 40, 1, Init("gaussian", s_v=1.0), "ntk", seed=2)
    x, grid = as_tensor(X1), as_tensor(np.linspace(-1, 1, 9))
    rates = (0.7, 0.2, 0.4)
    j, jg = net.jacobian(x).numpy(), net.jacobian(grid).numpy()
    eta = np.concatenate([np.full(40, rates[0]), np.full(40, rates[1]), np.full(40, rates[2])])
    f0, g0 = net.evaluate(x).numpy(), net.evaluate(grid).numpy()
    delta = np.zeros(120)
    for _ in range(57):
        residual = f0 + j @ delta - Y1
        delta -= eta * (j.T @ residual) / len(Y1)
    lin = linearized_solution(net, X1, Y1, "all", rates, steps=57)
    assert isinstance(lin, LinearizedSolution)
    np.testing.assert_allclose(lin(np.linspace(-1, 1, 9)), g0 + jg @ delta, rtol=1e-10, atol=1e-12)


def test_infinite_time_solution_is_the_minimum_norm_interpolant():
    """Independent route: numpy's minimum-norm least squares on the explicit feature matrix."""
    net = ShallowNetwork(theory.activation("relu"), 300, 1, Init("uniform"), seed=4)
    lin = linearized_solution(net, X1, Y1, "output")
    np.testing.assert_allclose(lin(X1), Y1, atol=1e-9)
    phi = net.features(as_tensor(X1)).detach().numpy()
    coef = np.linalg.lstsq(phi, Y1, rcond=None)[0]
    grid = np.linspace(-1, 1, 11)
    np.testing.assert_allclose(lin(grid), net.features(as_tensor(grid)).detach().numpy() @ coef, atol=1e-9)


def test_output_layer_training_is_exactly_its_linearization():
    """f is linear in v, so gradient descent on v follows the linearized model to rounding."""
    net = ShallowNetwork(theory.activation("softplus"), 200, 1, Init("gaussian", s_v=0.5), "ntk", seed=5)
    lin = linearized_solution(net, X1, Y1, "output", 0.8, steps=150)
    history = train(net, X1, Y1, 150, 0.8, layers="output")
    grid = np.linspace(-1, 1, 21)
    np.testing.assert_allclose(net.evaluate(as_tensor(grid)).numpy(), lin(grid), atol=1e-11)
    assert history.loss[-1] < history.loss[0]


def test_divergence_names_activation_width_and_step():
    net = ShallowNetwork(theory.activation("tanh"), 64, 1, Init("gaussian", s_v=1.0), "standard", seed=0)
    with pytest.raises(TrainingDiverged) as info:
        train(net, X1, Y1 * 1e3, 500, 1e4)
    message = str(info.value)
    assert "tanh" in message and "width 64" in message and "step" in message


def test_bad_requests_give_clear_errors():
    relu = theory.activation("relu")
    net = ShallowNetwork(relu, 8, 1)
    with pytest.raises(IbcheckError, match="training mode"):
        net.tangent_kernel(as_tensor(X1), as_tensor(X1), "hidden")
    with pytest.raises(IbcheckError, match="learning rates"):
        train(net, X1, Y1, 5, (1.0, 2.0))
    step = ShallowNetwork(theory.activation("step"), 8, 1)
    with pytest.raises(IbcheckError, match="point mass"):
        train(step, X1, Y1, 5, 0.1, layers="all")
    with pytest.raises(IbcheckError, match="singular"):
        linearized_solution(ShallowNetwork(relu, 2, 1, Init("uniform")), X1, Y1, "output")
    with pytest.raises(IbcheckError, match="step too large"):
        linearized_solution(ShallowNetwork(relu, 50, 1, Init("uniform")), X1, Y1, "output", lr=1e6, steps=3)


def test_from_weights_builds_the_given_network():
    w, b = np.array([[1.0], [-2.0]]), np.array([0.5, 1.0])
    net = ShallowNetwork.from_weights(theory.activation("relu"), w, b, v=[2.0, 3.0])
    x = np.array([-1.0, 0.0, 1.0])
    expected = 2 * np.maximum(x + 0.5, 0) + 3 * np.maximum(-2 * x + 1, 0)
    np.testing.assert_allclose(net.evaluate(as_tensor(x)).numpy(), expected)
    with pytest.raises(IbcheckError):
        ShallowNetwork.from_weights(theory.activation("relu"), w, np.zeros(3))


@pytest.mark.parametrize("loss_of, message", [
    # finite loss, infinite gradient: d sqrt(p)/dp at p = 0
    (lambda p: torch.sqrt(p).sum(), "non-finite gradient at step 0"),
    # finite loss and gradient, parameter growing by a factor 1 + 2 eta = 3 per step past 1e12
    (lambda p: -(p * p).sum(), "weights exploded"),
])
def test_gradient_descent_stops_on_bad_gradients_and_exploding_weights(loss_of, message):
    p = torch.tensor([0.0, 1.0], dtype=torch.float64, requires_grad=True)
    with pytest.raises(TrainingDiverged, match=message):
        gradient_descent([p], lambda: loss_of(p), 100, 1.0)


def test_array_descent_records_and_stops_on_bad_losses_and_exploding_weights():
    """The in-place numpy loop: L = p^2/2 (gradient p) with eta = 0.5 halves p every step and records
    the asked steps; a non-finite loss stops it at that step; L = -p^2/2 triples p per step
    (eta = 2), past 1e12 after 26 steps, caught at the next bound check (every 64 steps and at
    the records, here only step 0: step 64)."""
    def quadratic(sign):
        def loss_and_gradient(grad):
            grad[:] = sign * p
            return sign * 0.5 * float(p @ p)
        return loss_and_gradient

    p = np.array([1.0, -2.0])
    history = array_descent(p, quadratic(1.0), 10, 0.5, record_steps=[0, 3])
    assert history.steps == [0, 3, 10] and history.stopped_at == 10
    np.testing.assert_array_equal(p, np.array([1.0, -2.0]) / 2**10)        # exact: halving is exact in float64
    assert history.loss == [2.5, 2.5 / 4**3, 2.5 / 4**10]
    p = np.array([1.0, 0.0])
    with pytest.raises(TrainingDiverged, match="exploded .* at step 64"):
        array_descent(p, quadratic(-1.0), 200, 2.0, record_steps=[0])
    p, calls = np.array([1.0]), []

    def nan_at_step_5(grad):
        calls.append(1)
        grad[:] = 0.0
        return float("nan") if len(calls) == 6 else 1.0
    with pytest.raises(TrainingDiverged, match="diverged at step 5"):
        array_descent(p, nan_at_step_5, 100, 1.0)


def test_array_descent_with_a_separate_loss_evaluates_it_only_at_records_and_checks():
    """With ``loss=`` the closure only writes the gradient: the trajectory is the same as with the
    loss returned every step (halving p, exact), the recorded losses are the same, and ``loss()``
    runs only at the event steps (records, every 64th step, the progress bar's hundreds, the end);
    a NaN gradient is caught at the next check (step 64) as a non-finite loss."""
    p, evaluated = np.array([1.0, -2.0]), []

    def gradient(grad):
        grad[:] = p

    def loss():
        evaluated.append(1)
        return 0.5 * float(p @ p)
    history = array_descent(p, gradient, 10, 0.5, loss=loss, record_steps=[0, 3])
    assert history.steps == [0, 3, 10] and history.loss == [2.5, 2.5 / 4**3, 2.5 / 4**10]
    np.testing.assert_array_equal(p, np.array([1.0, -2.0]) / 2**10)
    assert len(evaluated) == 3                                             # steps 0, 3, 10
    p, evaluated = np.array([1.0]), []

    def nan_from_step_5(grad):
        evaluated.append(1)
        grad[:] = float("nan") if len(evaluated) > 5 else 0.0
    with pytest.raises(TrainingDiverged, match="diverged at step 64"):
        array_descent(p, nan_from_step_5, 200, 1.0, loss=lambda: float(p[0]), record_steps=[0])


@pytest.mark.parametrize("name, parameterization", [("relu", "ntk"), ("tanh", "standard"), ("softplus", "ntk")])
def test_one_training_step_is_the_autograd_gradient_step(name, parameterization):
    """train's closed-form gradient (no tape) against autograd of the same loss on a copy: one step
    with per-layer rates moves every parameter identically (to rounding, 1e-12 relative)."""
    act = theory.activation(name)
    net = ShallowNetwork(act, 50, 1, Init("gaussian", s_v=0.7), parameterization, seed=3)
    twin = net.snapshot()
    rates = (0.3, 0.2, 0.1)
    train(net, X1, Y1, 1, rates)
    x, y = as_tensor(X1), torch.as_tensor(np.asarray(Y1, dtype=float))
    params = [p.detach().clone().requires_grad_(True) for p in twin.parameters]
    twin.v, twin.w, twin.b = params
    loss = 0.5 * torch.mean((twin(x) - y) ** 2)
    for p, g, eta, moved in zip(params, torch.autograd.grad(loss, params), rates, net.parameters):
        expected = (p - eta * g).detach()
        np.testing.assert_allclose(moved.detach().numpy(), expected.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("h0", [0.0, 0.5, 1.0, 0.25])
def test_step_function_matches_torch_heaviside_at_the_edges(h0):
    """The step built from sign (faster than torch.heaviside) gives torch.heaviside's values at
    zeros of both signs, tiny and infinite arguments, and stays in [0, 1] at NaN."""
    from numerics.torch_activation import _heaviside

    u = torch.tensor([-2.0, -0.0, 0.0, 1e-300, -1e-300, float("inf"), -float("inf"), 3.0], dtype=torch.float64)
    assert torch.equal(_heaviside(u, h0), torch.heaviside(u, torch.tensor(h0, dtype=torch.float64)))
    assert 0 <= float(_heaviside(torch.tensor([float("nan")], dtype=torch.float64), h0)) <= 1


@pytest.mark.parametrize("sympy_fn, reference", [
    (sp.erf, mpmath.erf), (sp.erfc, mpmath.erfc), (sp.sin, mpmath.sin), (sp.cos, mpmath.cos)])
def test_arrays_backend_primitives_are_accurate(sympy_fn, reference):
    """The torch kernels the quadratures' backend takes over, against mpmath at 40 digits (an
    independent route): within 2 ulp on the pre-activations the quadratures meet (|u| <= 90)."""
    u = np.linspace(-90, 90, 1801) + 0.0123
    ours = ARRAYS.functions[sympy_fn](u)
    with mpmath.workdps(40):
        exact = np.array([float(reference(mpmath.mpf(float(v)))) for v in u])
    assert np.all(np.abs(ours - exact) <= 2 * np.spacing(np.abs(exact)))


@pytest.mark.parametrize("name", list(BUILTINS))
@pytest.mark.parametrize("derivative", [0, 1])
def test_arrays_backend_matches_numpy_backend(name, derivative):
    """The quadratures' backend (numpy with torch's erf, sin, cos, sigmoid, softplus and a sign-based
    step) against the theory layer's numpy backend (scipy's erf and expit, ``logaddexp``,
    ``np.heaviside``), an independent implementation of the same functions, over |u| <= 90 and at
    the kinks.  Tolerance: the primitives agree to a few ulp (test above: 2 ulp each against
    mpmath), and an expression can turn that into a few ulp of its O(1) intermediate values times
    |u| (GELU's 1 + erf(u/sqrt 2) cancels for u < 0: 7 ulp of the value at u = -1.6), so
    8 eps |sigma| + 8 eps (1 + |u|)."""
    act = theory.activation(name)
    if derivative and act.derivative(1).has(sp.DiracDelta):
        pytest.skip("sigma' is a point mass")
    u = np.concatenate([np.linspace(-90, 90, 3601), [0.0, -0.0, 1e-300, -1e-300]])
    ours, theirs = (np.broadcast_to(np.asarray(act.numeric(backend, derivative)(u), dtype=float), u.shape)
                    for backend in (ARRAYS.name, "numpy"))
    eps = np.finfo(float).eps
    assert np.all(np.abs(ours - theirs) <= 8 * eps * np.abs(theirs) + 8 * eps * (1 + np.abs(u)))
    kinks = np.abs(u) < 1e-200
    np.testing.assert_array_equal(ours[kinks], theirs[kinks])


@pytest.mark.parametrize("name", [n for n in BUILTINS if n != "step"])
def test_sigma_and_slope_in_one_pass_are_the_separate_programs_bit_for_bit(name):
    """The trainer's fused (sigma, sigma') program shares subexpressions but computes every value by the
    same operations as the two programs compiled apart: equal bit for bit (the trainings that used the
    two programs are reproduced exactly), on a batch above the branch-free select's size and at the kinks."""
    act = theory.activation(name)
    z = np.concatenate([np.linspace(-40, 40, 6 * 2000 - 4), [0.0, -0.0, 1e-300, -1e-300]]).reshape(6, -1)
    fused = sigma_and_slope(act)(z)
    for derivative, got in enumerate(fused):
        alone = act.numeric(ARRAYS.name, derivative)(z)
        np.testing.assert_array_equal(np.broadcast_to(got, z.shape), np.broadcast_to(alone, z.shape))
    u = torch.from_numpy(z)  # the tangent kernel's torch programs
    for derivative, got in enumerate(torch_sigma_and_slope(act)(u)):
        assert got.shape == u.shape
        assert torch.equal(got, torch_activation(act, derivative)(u))


@pytest.mark.parametrize("name", ["tanh", "softplus", "gelu", "elu", "gaussian", "silu"])
def test_numpy_kernels_for_plain_tensors_keep_torch_values_and_gradients(name):
    """exp, log and tanh of a plain float64 tensor come from numpy's kernels: the same values as torch's
    to 4 ulp (both are accurate to about an ulp); a tensor that autograd or torch.func tracks keeps
    torch's functions, so gradients, jacrev and vmap work as before."""
    act = theory.activation(name)
    sigma = torch_activation(act)
    u = torch.linspace(-40, 40, 801, dtype=torch.float64)
    tracked = u.clone().requires_grad_(True)
    values = sigma(tracked)
    np.testing.assert_allclose(sigma(u).numpy(), values.detach().numpy(), rtol=4 * np.finfo(float).eps, atol=0)
    (grad,) = torch.autograd.grad(values.sum(), tracked)
    # softplus is the identity above u = 37 only, where its slope 1 - 1e-16 rounds to 1
    np.testing.assert_allclose(grad.numpy(), torch_activation(act, 1)(u).numpy(), rtol=1e-12, atol=1e-12)
    jac = torch.func.jacrev(sigma)(u[:5])
    np.testing.assert_allclose(torch.diagonal(jac).numpy(), grad[:5].numpy(), rtol=1e-12, atol=1e-12)
    with torch.no_grad():
        np.testing.assert_allclose(torch.func.vmap(sigma)(u.reshape(3, -1)).numpy().ravel(), sigma(u).numpy(),
                                   rtol=4 * np.finfo(float).eps, atol=0)


@pytest.mark.parametrize("layers", ["output", "all"])
def test_tangent_kernel_over_many_blocks_reuses_leading_rows_and_returns_f0(layers):
    """Over several blocks of CHUNK neurons: the kernel with x2 a view of x1's first rows (its features
    reused), with x2 = x1, and with x2 a copy of those rows (features formed again) all equal the explicit
    Jacobian product; the f(x1) formed with the kernel is :meth:`evaluate`'s, bit for bit."""
    from numerics import networks

    net = ShallowNetwork(theory.activation("gelu"), 2 * networks.CHUNK + 300, 2, Init("gaussian", s_v=1.0), "ntk", 3)
    x1 = as_tensor(np.random.default_rng(1).normal(size=(9, 2)))
    jac = net.jacobian(x1, layers)
    rates = (0.3, 2.0, 5.0)
    eta = torch.cat([torch.full((net.width,), rates[0], dtype=torch.float64),
                     torch.full((2 * net.width,), rates[1], dtype=torch.float64),
                     torch.full((net.width,), rates[2], dtype=torch.float64)])[:jac.shape[1]]
    expected = (jac * eta) @ jac.T
    assert networks._leading_rows(x1, x1[:4]) and networks._leading_rows(x1, x1)
    assert not networks._leading_rows(x1, x1[1:5]) and not networks._leading_rows(x1, x1[:4].clone())
    for x2 in (x1[:4], x1, x1[:4].clone()):
        kernel, values = net._kernel_and_output(x1, x2, layers, rates, output=True)
        torch.testing.assert_close(kernel, expected[:, :len(x2)], rtol=1e-12, atol=1e-14)
        assert torch.equal(values, net.evaluate(x1))
    small = tuple(r / 10 for r in rates)
    lin = linearized_solution(net, x1[:4], np.zeros(4), layers, small, steps=3)  # f_lin = f_0 + K(x, X) weights
    direct = net.evaluate(x1) + net.tangent_kernel(x1, x1[:4].clone(), layers, small) @ lin.weights
    np.testing.assert_allclose(lin(x1), direct.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("layers", ["output", "all"])
def test_mirrored_network_kernel_is_the_jacobian_product_from_its_first_half(layers):
    """An antisymmetric network before training (second half = first half with -v) forms only its first
    half's features: its kernel still equals the explicit Jacobian product over all neurons (to rounding:
    the additions come in another order), f = 0 exactly where evaluate() leaves rounding noise; once
    trained it is no longer mirrored and takes the general route, again the Jacobian product."""
    from numerics import networks

    net = ShallowNetwork(theory.activation("gelu"), 2 * (networks.CHUNK + 300), 2,
                         Init("gaussian", s_v=1.0, antisymmetric=True), "ntk", 3)
    x1 = as_tensor(np.random.default_rng(1).normal(size=(9, 2)))
    rates = (0.3, 2.0, 5.0)

    def jacobian_kernel(network):
        jac = network.jacobian(x1, layers)
        eta = torch.cat([torch.full((network.width,), rates[0], dtype=torch.float64),
                         torch.full((2 * network.width,), rates[1], dtype=torch.float64),
                         torch.full((network.width,), rates[2], dtype=torch.float64)])[:jac.shape[1]]
        return (jac * eta) @ jac.T

    assert net.mirrored()
    assert not ShallowNetwork(theory.activation("gelu"), 10, 2, Init("gaussian", s_v=1.0), "ntk", 3).mirrored()
    kernel, values = net._kernel_and_output(x1, x1[:4], layers, rates, output=True)
    torch.testing.assert_close(kernel, jacobian_kernel(net)[:, :4], rtol=1e-12, atol=1e-14)
    assert torch.equal(values, torch.zeros(len(x1), dtype=torch.float64))
    assert float(net.evaluate(x1).abs().max()) < 1e-14  # the same 0, summed with rounding
    train(net, x1, np.sin(x1[:, 0].numpy()), 1, 0.1, layers)
    assert not net.mirrored()
    torch.testing.assert_close(net.tangent_kernel(x1, x1[:4], layers, rates), jacobian_kernel(net)[:, :4],
                               rtol=1e-12, atol=1e-14)
