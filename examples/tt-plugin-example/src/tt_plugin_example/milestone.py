"""Milestone x1: find the minimum of Swish numerically and check it against the closed form.

Setting the derivative of ``x * sigmoid(x)`` to zero gives ``1 + x * (1 - sigmoid(x)) = 0``,
whose solution is ``x* = -1 - W(1/e)`` (W: Lambert's W), where Swish equals ``x* + 1 = -W(1/e)``.
"""

from __future__ import annotations

import numpy as np
from tt_core import tensor

# W(1/e), the solution of w * exp(w) = 1/e
OMEGA_OVER_E = 0.2784645427610738


def run(ctx) -> None:
    points = 20_001 if ctx.quick else 200_001
    ctx.configure(grid=(-5.0, 5.0), points=points, beta=1.0)
    grid = np.linspace(-5, 5, points, dtype=np.float64)
    swish = ctx.component("layer", "Swish")()
    values = swish(tensor(grid, dtype="float64")).numpy()  # one vectorised forward pass
    lowest = int(np.argmin(values))
    ctx.log(f"Swish reaches {values[lowest]:.6f} at x = {grid[lowest]:.4f}")
    ctx.check("minimum_error", abs(values[lowest] + OMEGA_OVER_E), "<=", 1e-4)
    ctx.check("argmin_error", abs(grid[lowest] + 1 + OMEGA_OVER_E), "<=", 1e-3)

    relu = ctx.component("activation", "ReLU")()
    fig, ax = ctx.figure(figsize=(5, 4))
    ax.plot(grid, values, label="Swish")
    ax.plot(grid, relu(tensor(grid)).numpy(), "--", label="ReLU")
    ax.plot(grid[lowest], values[lowest], "ko", label=f"minimum {values[lowest]:.4f}")
    ax.set(xlabel="x", ylabel="activation", ylim=(-1, 5), title="Swish vs ReLU")
    ax.legend()
    ctx.save_figure(fig, "swish.png", "Swish and ReLU over the grid, with the minimum of Swish marked.")
