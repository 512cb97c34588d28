"""detect_anomaly: the first NaN or inf, in forward or backward, named with its op, provider and line."""

import contextlib
import doctest
import inspect

import numpy as np
import pytest
import tt_core as tt
from tt_core import Linear, Sequential, Tanh, dispatch, plugins
from tt_core.errors import TinyTorchError
from tt_learn import SGD, AnomalyError, MSELoss, anomaly, detect_anomaly


def _line() -> int:
    """The line number of the caller's next line."""
    return inspect.currentframe().f_back.f_lineno + 1


def _plain_table() -> bool:
    plain = plugins.get_plugin_system().bound_ops
    return dispatch.get_wrapper() is None and all(dispatch.OP_TABLE[n] is plain[n] for n in dispatch.OP_TABLE)


@pytest.fixture(autouse=True)
def table_restored():
    yield
    assert _plain_table(), "a test left the op table wrapped"


def test_a_nan_made_in_forward_names_the_op_its_kernel_inputs_and_line():
    x = tt.tensor([1.0, -2.0, 4.0], requires_grad=True)
    with pytest.raises(AnomalyError) as caught:
        with detect_anomaly():
            doubled = x * 2.0
            line = _line()
            doubled.log()
    error = caught.value
    assert isinstance(error, TinyTorchError)
    assert (error.op, error.phase, error.provider) == ("log", "forward", "tt-core")
    assert (error.site.filename, error.site.lineno, error.site.function) == (
        __file__, line, "test_a_nan_made_in_forward_names_the_op_its_kernel_inputs_and_line")
    message = str(error)
    assert message.startswith("op 'log' made NaN (1 of 3 values) in forward, kernel from tt-core")
    assert "input 0: (3,) float32, min -4, max 8" in message
    assert f"test_anomaly.py:{line}" in message and "doubled.log()" in message


def test_a_nan_made_only_in_backward_names_the_rule_and_the_forward_line():
    x = tt.tensor([0.0, 4.0], requires_grad=True)
    with detect_anomaly():
        line = _line()
        root = x.sqrt()  # sqrt(0) = 0 is finite; its gradient 1 / (2 sqrt(0)) is not
        total = root.sum()
        with pytest.raises(AnomalyError) as caught:
            total.backward()
    error = caught.value
    assert (error.op, error.phase, error.provider) == ("sqrt", "backward", "tt-learn")
    assert error.site.lineno == line and error.site.filename == __file__
    message = str(error)
    assert "the gradient rule of op 'sqrt' (from tt-learn) made inf (1 of 2 values) in backward" in message
    assert "input 0: (2,) float32, min 0, max 4" in message and "root = x.sqrt()" in message


def test_the_caller_is_found_through_layers_and_helpers():
    """The line named is the first one outside TinyTorch's packages: the caller's helper."""
    model = Sequential(Linear(2, 2), Tanh())

    def broken_head(h):
        return (h - 5.0).log()  # every tanh output is below 5

    with pytest.raises(AnomalyError) as caught, detect_anomaly():
        broken_head(model(tt.tensor([[1.0, 2.0]])))
    assert caught.value.op == "log" and caught.value.site.function == "broken_head"


def test_finite_values_change_nothing():
    def step(check: bool):
        tt.manual_seed(0)
        model = Sequential(Linear(3, 4), Tanh(), Linear(4, 1))
        optimizer = SGD(model.parameters(), lr=0.1)
        x = tt.tensor(np.linspace(-1, 1, 15, dtype=np.float32).reshape(5, 3))
        y = tt.tensor(np.ones((5, 1), dtype=np.float32))
        with detect_anomaly() if check else contextlib.nullcontext():
            loss = MSELoss()(model(x), y)
            loss.backward()
            optimizer.step()
        return loss.item(), [p.data.copy() for p in model.parameters()]

    plain_loss, plain_params = step(False)
    checked_loss, checked_params = step(True)
    assert checked_loss == plain_loss
    for plain, checked in zip(plain_params, checked_params):
        np.testing.assert_array_equal(plain, checked)


def test_the_op_table_holds_the_plain_ops_again_after_the_block():
    x = tt.tensor([2.0, 3.0])
    (x * x).log()  # in the table before the block
    with detect_anomaly():
        assert dispatch.get_wrapper() is anomaly.checked
        assert dispatch.OP_TABLE["log"] is not plugins.get_plugin_system().bound_ops["log"]
        (x + x).exp()
    assert _plain_table() and {"mul", "log", "add", "exp"} <= set(dispatch.ops_used())
    with pytest.raises(AnomalyError), detect_anomaly():
        (x - 5.0).log()
    assert _plain_table()  # also after an error
    with np.errstate(invalid="ignore"):
        assert np.isnan((x - 5.0).log().numpy()).all()  # off: nothing is checked


def test_blocks_nest_and_work_as_decorators():
    x = tt.tensor([-1.0])
    with detect_anomaly():
        with detect_anomaly():
            pass
        with pytest.raises(AnomalyError):  # the outer block still checks
            x.log()

    @detect_anomaly
    def bare():
        return x.sqrt()

    @detect_anomaly()
    def called():
        return x.log()

    with pytest.raises(AnomalyError, match="'sqrt'"):
        bare()
    with pytest.raises(AnomalyError, match="'log'"):
        called()


def test_a_learners_kernel_is_named_as_the_provider():
    def kernel(ctx, a):
        return a / 0.0

    op = anomaly.checked(dispatch.BoundOp.make("ratio", kernel, None, (), "my-tinytorch", None))
    assert op.backward is None and (op.kernel_dist, op.rule_dist) == ("my-tinytorch", None)
    with pytest.raises(AnomalyError, match="kernel from my-tinytorch") as caught:
        op.forward(op.context(), np.array([1.0, -1.0, 0.0]))
    assert "NaN and inf (3 of 3 values)" in str(caught.value) and "all NaN and -inf and inf" in str(caught.value)


def test_registered_and_documented():
    assert tt.get_registry().get("function", "detect_anomaly") is detect_anomaly
    result = doctest.testmod(anomaly, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
