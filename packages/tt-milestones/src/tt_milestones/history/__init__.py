"""The run functions of the six milestones, one module each (``mNN_slug.py``).

They are imported only when their milestone runs, so ``tt-milestones list`` stays fast, and
they reach later Acts only through the registry (``ctx.component(kind, name)``).
"""
