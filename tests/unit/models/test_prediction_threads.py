"""LightGBM predictions from several threads with different thread counts (the served engine's
1 beside a batch job's every core). LightGBM keeps one process-wide thread count, so without
the gate in ``predict_best`` this crashes the process (a segfault: exit code -11). Each run is
a subprocess, so a crash fails the test instead of ending the test session."""

import subprocess
import sys
import textwrap

STRESS = textwrap.dedent(
    """
    import sys, threading, time
    import lightgbm as lgb
    import numpy as np
    from otaku.models.rating import predict_best

    rng = np.random.default_rng(0)
    features, labels = rng.random((2000, 20)), rng.random(2000)
    params = {"objective": "regression", "verbose": -1, "num_leaves": 15, "num_threads": 2}
    booster = lgb.train(params, lgb.Dataset(features, labels), 50)
    batch = features[:64]
    deadline = time.monotonic() + float(sys.argv[1])

    def predict(threads):
        calls = 0
        while time.monotonic() < deadline:
            predict_best(booster, batch, threads)
            calls += 1
        assert calls > 10

    workers = [threading.Thread(target=predict, args=(n,)) for n in (1, 2, 1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print("survived")
    """
)


def test_predictions_with_different_thread_counts_at_once_do_not_crash() -> None:
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", STRESS, "6"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
        assert "survived" in done.stdout
