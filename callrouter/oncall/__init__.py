"""Who is on call and when a line is open: rota resolution, hunt plans, service hours and live
cover, over the validated settings. Pure (instants are arguments), but outside ``core``, which
sees only the ``HuntPlan`` values and the ``is_open`` answers these make."""
