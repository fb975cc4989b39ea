"""The submission order of fit_models: longest expected fit first (glass_sm.fitting.submission_order)."""

from glass_sm import config
from glass_sm.data import build_samples
from glass_sm.fitting import expected_cost, submission_order
from glass_sm.models import build_model, count_flops
from glass_sm.testing import make_toy_cube

OVERRIDES = {"samples.window": 6, "samples.block_size": 2, "samples.max_train_samples": 400,
             "samples.max_eval_samples": 100, "models.hparams.common.hidden_size": 8,
             "models.hparams.common.num_layers": 1, "training.epochs": 4}


def _samples():
    cfg = config.load(None, OVERRIDES)
    cube, _ = make_toy_cube(n_lat=3, n_lon=3, start="2000-03-01", end="2000-12-31", seed=2, with_truth=True)
    return cfg, build_samples(cube, cfg)


def test_longest_first_torch_before_trees_ties_in_given_order():
    cfg, s = _samples()
    short = s.with_window(2)
    jobs = [("xgboost", s, {}), ("lstm", short, {}), ("xgboost_window", s, {}), ("bilstm", s, {}),
            ("lstm", s, {}), ("lstm", s, {"epochs": 8}), ("lstm", s, {})]
    order = submission_order(jobs, cfg)
    costs = [expected_cost(n, smp, cfg, kw) for n, smp, kw in jobs]
    assert sorted(order) == list(range(len(jobs)))
    assert [costs[i] for i in order] == sorted(costs, reverse=True)  # longest first
    assert order[-2:] == [2, 0]  # trees last: the window's L * F columns before the target day's F
    assert order.index(3) < order.index(4)  # a bilstm before an lstm of the same window and epochs
    assert order.index(4) < order.index(6)  # equal costs keep the given order
    assert order.index(5) < order.index(4)  # twice the epochs
    assert order.index(4) < order.index(1)  # a 6-day window before a 2-day one


def test_expected_cost_is_flops_times_epochs_and_rows_columns_trees():
    cfg, s = _samples()
    F, L = s.n_features, s.window
    kind, cost = expected_cost("lstm", s, cfg, {"epochs": 3})
    hp = {k: v for k, v in __import__("glass_sm.models", fromlist=["model_hparams"]).model_hparams(
        "lstm", cfg, int(cfg.run.seed)).items()}
    assert kind == 1 and cost == float(count_flops(build_model("lstm", F, L, **hp), L, F)) * 3
    n_est = cfg.models.hparams["xgboost"]["n_estimators"] if "xgboost" in cfg.models.hparams else None
    kind, cost = expected_cost("xgboost", s, cfg)
    kind_w, cost_w = expected_cost("xgboost_window", s, cfg)
    assert kind == kind_w == 0
    assert cost_w == cost * L  # same trees, L times the columns
    if n_est is not None:
        assert cost == float(len(s.train)) * F * n_est
