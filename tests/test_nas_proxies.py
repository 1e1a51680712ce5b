"""Zero-cost proxies (answers worked out by hand), learning curves, bootstrap intervals, search, ensembles, the result."""
import json
import math
import re

import numpy as np
import pytest
import torch
from scipy import stats as sps
from torch import nn

from fyi_apps.errors import FyiError
from fyi_apps.evaluate import EvalConfig, evaluate_images
from fyi_apps.tasks import nas
from fyi_apps.tasks.nas import zerocost as zc
from fyi_apps.tasks.nas.stats import bootstrap_intervals, rank_stats, rho_difference, search_simulation


def _linear(w):
    net = nn.Sequential(nn.Linear(w.shape[1], w.shape[0], bias=False))
    with torch.no_grad():
        net[0].weight.copy_(w)
    return net


# ----------------------------------------------------------------- zero-cost measures
def test_synflow_is_the_same_flow_through_every_layer_of_a_linear_chain():
    # R = sum of outputs with |W| and an all-ones input; for a chain of bias-free layers every layer's
    # sum |theta dR/dtheta| equals R (synaptic flow is conserved), so the score is (layers) x R
    w1 = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    w2 = torch.tensor([[-1.0, 4.0]])
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.BatchNorm1d(2), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(w1)
        net[2].weight.copy_(w2)
    r = float(w2.abs() @ w1.abs() @ torch.ones(2))
    assert zc.synflow(net, torch.randn(5, 2)) == pytest.approx(2 * r)  # BatchNorm removed, not applied
    assert net[0].weight[0, 1] == -2.0  # the caller's network is untouched


def test_snip_grad_norm_fisher_and_grasp_of_one_linear_layer_match_their_closed_forms():
    torch.manual_seed(0)
    w = torch.randn(3, 4)
    x = torch.randn(5, 4)
    y = torch.tensor([0, 2, 1, 1, 0])
    p = torch.softmax(x @ w.t(), 1)
    e = torch.nn.functional.one_hot(y, 3).float()
    grad = (p - e).t() @ x / 5  # dL/dW of the mean cross-entropy
    got = zc.loss_gradient_scores(_linear(w), x, y)
    assert got["snip"] == pytest.approx(float((w * grad).abs().sum()), rel=1e-5)
    assert got["grad_norm"] == pytest.approx(float(grad.norm()), rel=1e-5)
    act, dact = x @ w.t(), (p - e) / 5
    assert got["fisher"] == pytest.approx(float(0.5 * (act * dact).pow(2).mean(0).sum()), rel=1e-5)
    # H g for softmax cross-entropy: per image, (diag(p) - p p^T) (G x) x^T, averaged
    hg = torch.zeros_like(w)
    for i in range(5):
        jac = torch.diag(p[i]) - torch.outer(p[i], p[i])
        hg += torch.outer(jac @ (grad @ x[i]), x[i]) / 5
    assert zc.grasp(_linear(w), x, y) == pytest.approx(float((-w * hg).sum()), rel=1e-4)


def test_jacob_cov_of_a_linear_map_has_perfectly_correlated_jacobians():
    # every image has the same Jacobian (the column sums of W): the correlation matrix is all ones,
    # eigenvalues n and 0 (n - 1 times)
    n, k = 6, 1e-5
    w = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    got = zc.jacob_cov(_linear(w), torch.randn(n, 4))
    want = -((math.log(n + k) + 1 / (n + k)) + (n - 1) * (math.log(k) + 1 / k))
    assert got == pytest.approx(want, rel=1e-6)
    # an output that does not depend on the input (a disconnected cell) ranks last
    assert zc.jacob_cov(nn.Sequential(nn.Linear(4, 2), nn.Flatten(), _Zero()), torch.randn(n, 4)) == float("-inf")


class _Zero(nn.Module):
    def forward(self, x):
        return x * 0.0


def test_naswot_kernel_counts_agreeing_activation_signs():
    net = nn.Sequential(nn.ReLU())
    x = torch.tensor([[1.0, -1.0, 2.0], [-1.0, 1.0, 3.0]])
    # codes [1,0,1] and [0,1,1]: K = [[3, 1], [1, 3]] (units that agree), log det = log 8
    assert zc.naswot(net, x) == pytest.approx(math.log(8.0))
    assert zc.naswot(net, torch.ones(2, 3)) == float("-inf")  # identical codes: K singular


def test_score_network_shares_one_pass_and_refuses_unknown_measures():
    torch.manual_seed(0)
    x, y = torch.randn(130, 4), torch.randint(0, 3, (130,))

    def make():
        torch.manual_seed(3)
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))

    scores, seconds = nas.score_network(make, x, y, ["snip", "grad-norm", "naswot", "synflow"])
    assert set(scores) == set(seconds) == {"snip", "grad_norm", "naswot", "synflow"}
    assert scores["snip"] == pytest.approx(zc.snip(make(), x[:64], y[:64]))
    assert scores["naswot"] == pytest.approx(zc.naswot(make(), x[:128]))  # NASWOT's batch of 128
    with pytest.raises(FyiError, match="zero-cost proxies are synflow"):
        nas.score_network(make, x, y, ["synflow", "zen"])


# ----------------------------------------------------------------- statistics
def test_bootstrap_intervals_contain_the_estimate_and_shrink_with_more_candidates():
    rng = np.random.default_rng(0)
    t = rng.random(200)
    p = t + 0.5 * rng.random(200)
    small = bootstrap_intervals(p[:30], t[:30], seed=1)
    big = bootstrap_intervals(p, t, seed=1)
    for name, fn in (("spearman", sps.spearmanr), ("kendall", sps.kendalltau)):
        est = fn(p, t).statistic
        assert big[name][0] < est < big[name][1]
        assert big[name][1] - big[name][0] < small[name][1] - small[name][0]
    assert bootstrap_intervals(p, t, seed=1) == big  # seeded
    assert bootstrap_intervals([1, 1, 1], [1, 2, 3]) == {"spearman": None, "kendall": None}


def test_rho_difference_is_paired_and_known_by_hand():
    t = np.arange(30.0)
    rng = np.random.default_rng(0)
    noisy = t + rng.normal(0, 8, 30)
    same = rho_difference(noisy, noisy, t)
    assert same["diff"] == 0.0 and same["ci"] == [0.0, 0.0]  # a proxy against itself: 0 on every resample
    flip = rho_difference(t, -t, t)
    assert flip["diff"] == pytest.approx(2.0) and flip["ci"] == pytest.approx([2.0, 2.0])
    d = rho_difference(t, noisy, t, resamples=500)
    assert d["diff"] == pytest.approx(1.0 - sps.spearmanr(noisy, t).statistic)
    assert d["ci"][0] <= d["diff"] <= d["ci"][1] and d["ci"][0] > 0
    assert rho_difference(np.ones(30), noisy, t)["diff"] is None  # a constant proxy has no rho
    with pytest.raises(FyiError, match="one value per candidate"):
        rho_difference(t, t[:5], t)


def test_search_simulation_against_a_hand_count():
    truth = [0.1, 0.2, 0.3, 0.4]
    perfect = search_simulation(truth, truth, sizes=(2, 4, 10), draws=500, seed=0)
    assert set(perfect) == {"2", "4"}  # N above the number of candidates is left out
    assert perfect["4"] == {"draws": 1, "mean": 0.4, "std": 0.0, "oracle_mean": 0.4, "oracle_std": 0.0}
    assert perfect["2"]["mean"] == pytest.approx(perfect["2"]["oracle_mean"])
    # expected best of 2 drawn from 4: P(max = 0.4) = 1/2, 0.3: 1/3, 0.2: 1/6 -> 0.3333
    assert perfect["2"]["mean"] == pytest.approx(0.4 / 2 + 0.3 / 3 + 0.2 / 6, abs=0.01)
    reversed_ = search_simulation([-v for v in truth], truth, sizes=(4,))
    assert reversed_["4"]["mean"] == 0.1


def test_rank_stats_carries_intervals_and_search():
    t = list(np.linspace(0, 1, 30))
    s = rank_stats(t, t, ks=[10], search_sizes=(10,))
    assert s["spearman"] == 1.0 and s["ci"]["spearman"] == [1.0, 1.0]
    assert s["top"]["10"]["ci"]["kendall"] == [1.0, 1.0]
    assert s["search"]["10"]["mean"] == s["search"]["10"]["oracle_mean"]


# ----------------------------------------------------------------- curves
def test_a_curve_is_recorded_in_one_run_without_changing_the_run(digits):
    images, labels = digits.train.images[:40], digits.train.labels[:40]
    cfg = EvalConfig(epochs=4, batch_size=16, dsa=False)
    plain = evaluate_images(images, labels, digits, arch="mlp", cfg=cfg, seeds=[0], device="cpu")
    curved = evaluate_images(images, labels, digits, arch="mlp", cfg=cfg, seeds=[0], device="cpu",
                             curve=[40, 100, 160])
    assert curved.accs == plain.accs  # same training, same bits
    pts = curved.extra["curves"][0]
    assert [p["images"] for p in pts] == [40, 100, 160] and [p["epochs"] for p in pts] == [1.0, 2.5, 4.0]
    assert pts[-1]["acc"] == plain.accs[0]
    assert pts[0]["seconds"] <= pts[1]["seconds"] <= pts[2]["seconds"]
    one = evaluate_images(images, labels, digits, arch="mlp", cfg=EvalConfig(epochs=1, batch_size=16, dsa=False),
                          seeds=[0], device="cpu")
    assert pts[0]["acc"] == one.accs[0]  # after one epoch of a 4-epoch run = a 1-epoch run (lr drops at 2)
    with pytest.raises(FyiError, match="curve points"):
        evaluate_images(images, labels, digits, arch="mlp", cfg=cfg, seeds=[0], device="cpu", curve=[161])


def test_curve_points_put_early_stopping_at_the_same_image_passes(digits):
    cfg = nas.NasConfig(dataset="digits", proxy_epochs=20, curve=[1, 5, 20, 30][:3])
    random_ = nas.resolve_set("random:3", digits)
    early = nas.early_stopping_set(digits, 3, 20)
    assert nas.curve_points(cfg, random_) == [(1, 30), (5, 150), (20, 600)]
    assert nas.curve_points(cfg, early) == [(1, 30), (5, 150), (20, 600)]
    assert nas.curve_points(nas.NasConfig(dataset="digits"), random_) == []
    with pytest.raises(FyiError, match="curve points"):
        nas.check_config(nas.NasConfig(dataset="digits", proxy_epochs=5, curve=[6]))


# ----------------------------------------------------------------- a whole ranking
@pytest.fixture(scope="module")
def ranking(digits, tmp_path_factory):
    cache = tmp_path_factory.mktemp("nas-cache")
    cfg = nas.NasConfig(dataset="digits", proxies=["random", "early", "synflow", "snip", "params"], ipc=2,
                        space="mlp:width=8,mlp:width=16,mlp:width=32,mlp:width=64,convnet:depth=1,width=8",
                        truth="real:10", full_epochs=2, proxy_epochs=6, curve=[2, 6], topk=[3], dsa=False,
                        ensembles=["params+synflow", "random+params"])
    return cfg, nas.run_ranking(cfg, cache_dir=cache, dataset=digits, device="cpu", progress=False), cache


def test_ranking_result_is_an_object_and_still_reads_as_the_report(ranking):
    cfg, res, _ = ranking
    assert isinstance(res, nas.RankingResult)
    assert res.proxies[:5] == ["random ipc2", "early stopping (full data, 12 images/class once)", "synflow", "snip",
                               "parameter count"]
    st = res.stats["synflow"]
    assert st.spearman == res["proxies"][2]["stats"]["spearman"] and st.n == 5
    assert st.kind == "zerocost" and st.seconds > 0 and st.image_passes is None
    assert res.stats["random ipc2"].image_passes == 20 * 6
    curve = res.curve("random ipc2")
    assert [c.epochs for c in curve] == [2, 6] and [c.image_passes for c in curve] == [40, 120]
    assert curve[-1].spearman == res.stats["random ipc2"].spearman  # the last point is the full run
    early = res.curve("early stopping (full data, 12 images/class once)")
    assert [c.image_passes for c in early] == [40, 120]  # the same compute as the random subset's points
    assert "rho [95% CI]" in res.table() and "| synflow" in res.table(markdown=True)
    assert json.loads(res.to_json())["candidates"] == res.candidates
    with pytest.raises(KeyError):
        res.curve("nope")
    assert "RankingResult(5 candidates on digits" in repr(res)


def test_ensembles_are_mean_ranks_with_summed_cost(ranking):
    cfg, res, _ = ranking
    ens = res["proxies"][-2]
    assert ens["label"] == "ensemble: parameter count + synflow" and ens["kind"] == "ensemble"
    params, syn = res["proxies"][4]["accs"], res["proxies"][2]["accs"]
    rp, rs = sps.rankdata([params[c] for c in res.candidates]), sps.rankdata([syn[c] for c in res.candidates])
    assert [ens["accs"][c] for c in res.candidates] == pytest.approx(list((rp + rs) / 2))
    assert ens["seconds"][res.candidates[0]] == pytest.approx(res["proxies"][2]["seconds"][res.candidates[0]])
    trained = res["proxies"][-1]  # a trained proxy + a free one follows the trained proxy's curve
    assert [c["epochs"] for c in trained["curve"]] == [2, 6]
    with pytest.raises(FyiError, match="not one of this ranking's proxies"):
        nas.ensemble_parts(cfg, "params+zen", res.proxies)
    with pytest.raises(FyiError, match="at least two"):
        nas.ensemble_parts(cfg, "params", res.proxies)


def test_an_ensemble_may_name_a_proxy_whose_label_holds_a_plus():
    from types import SimpleNamespace

    labels = ["dm [space:nb201] ipc10", "dm [space:nb201]+fyi ipc10", "dm+fyi ipc10", "parameter count", "synflow"]
    cfg = SimpleNamespace(proxies=["s.safetensors", "sf.safetensors", "f.safetensors", "params", "synflow"])
    parts = nas.ensemble_parts(cfg, "dm [space:nb201]+fyi ipc10+params", labels)
    assert parts == ["dm [space:nb201]+fyi ipc10", "parameter count"]
    assert nas.ensemble_parts(cfg, "dm [space:nb201] ipc10+params", labels) == ["dm [space:nb201] ipc10",
                                                                               "parameter count"]
    assert nas.ensemble_parts(cfg, "synflow + DM+FYI ipc10 + params", labels) == ["synflow", "dm+fyi ipc10",
                                                                                 "parameter count"]
    short = SimpleNamespace(proxies=["s.safetensors", "params", "synflow"])
    with pytest.raises(FyiError, match=r"names 'dm \[space:nb201\]'"):
        nas.ensemble_parts(short, "dm [space:nb201]+fyi ipc10+params", labels[:1] + labels[3:])


def test_the_report_has_curve_tables_and_the_compute_figure(ranking, tmp_path):
    _, res, _ = ranking
    paths = nas.write_report(res, tmp_path, name="r", command="fyi nas ...")
    md = paths["md"].read_text()
    assert "### 2 proxy epochs" in md and "### 6 proxy epochs" in md and "synflow (no training)" in md
    assert "[95% CI]" in md and "| p " in md
    assert paths["curves_png"].stat().st_size > 10_000
    assert json.loads(paths["json"].read_text())["command"] == "fyi nas ..."


def test_paired_differences_compare_fyi_twins_and_the_parameter_count(ranking, tmp_path):
    _, res, _ = ranking
    report = dict(res)
    twin = dict(report["proxies"][0], label="random+fyi ipc2")  # a stand-in FYI twin: the same accuracies
    twin["accs"] = {c: -v for c, v in twin["accs"].items()}
    twin["curve"] = [dict(c, accs={k: -v for k, v in c["accs"].items()}) for c in twin["curve"]]
    report["proxies"] = [*report["proxies"], twin]
    pairs = nas.paired_comparisons(report, resamples=200)
    fyi_pair = next(q for q in pairs if q["kind"] == "fyi")
    assert (fyi_pair["a"], fyi_pair["b"]) == ("random+fyi ipc2", "random ipc2")
    rho = {c.epochs: c.spearman for c in res.curve("random ipc2")}
    for pt in fyi_pair["points"]:  # negated accuracies: rho(-x) - rho(x) = -2 rho(x)
        assert pt["diff"] == pytest.approx(-2 * rho[pt["epochs"]])
    vs = {q["a"] for q in pairs if q["kind"] == "vs-params"}
    assert "random ipc2" in vs and "synflow" not in vs and "parameter count" not in vs
    params = next(q for q in pairs if q["a"] == "random ipc2" and q["kind"] == "vs-params")
    assert [p["epochs"] for p in params["points"]] == [2, 6]
    assert params["points"][-1]["diff"] == pytest.approx(
        res.stats["random ipc2"].spearman - res.stats["parameter count"].spearman)
    md = nas.write_report(res, tmp_path, name="p")["md"].read_text()
    assert "### Paired differences" in md and re.search(r"\| random ipc2 - parameter count +\| vs-params", md)


# ----------------------------------------------------------------- space-drawn distillation
@pytest.mark.parametrize("fyi", [None, "flip"])
def test_space_drawn_dm_is_reproducible_recorded_and_resumable(digits, tmp_path, fyi):
    from fyi_apps.distill import DistillConfig, Distiller
    from fyi_apps.networks import nb201
    from fyi_apps.synset import load_synset

    arch = "space:nb201;cells=1;width=4"
    cfg = DistillConfig(method="dm", dataset="digits", ipc=1, iterations=6, batch_real=8, arch=arch, fyi=fyi, seed=3)
    a = Distiller(cfg, digits, device="cpu").run(tmp_path / "a.safetensors", progress=False)
    b = Distiller(cfg, digits, device="cpu").run(tmp_path / "b.safetensors", progress=False)
    assert torch.equal(a.images, b.images)
    drawn = load_synset(tmp_path / "a.safetensors").extra["drawn_archs"]
    assert drawn["space"] == arch and drawn["count"] == 6 == len(drawn["names"])
    assert all(n.startswith("nb201:") and n.endswith(";cells=1;width=4") for n in drawn["names"])
    assert len(set(drawn["names"])) > 1 and {n[6:-16] for n in drawn["names"]} <= set(nb201.all_cells())
    other = Distiller(DistillConfig(**{**cfg.__dict__, "seed": 4}), digits, device="cpu").run(progress=False)
    assert other.extra["drawn_archs"]["names"] != drawn["names"]  # the draws follow the seed
    out = tmp_path / "c.safetensors"
    assert Distiller(cfg, digits, device="cpu").run(out, progress=False, stop_after=2) is None
    resumed = Distiller(cfg, digits, device="cpu").run(out, resume=True, progress=False)
    assert torch.equal(resumed.images, a.images) and resumed.extra["drawn_archs"] == drawn


def test_space_arch_lists_and_errors():
    from fyi_apps.networks.spaces import draw_architecture, space_arch

    assert space_arch("space:mlp|convnet|mlp") == (["mlp", "convnet"], "")
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert [draw_architecture("space:classic", g1) for _ in range(5)] == \
        [draw_architecture("space:classic", g2) for _ in range(5)]
    with pytest.raises(FyiError, match="unknown space"):
        space_arch("space:nb202")
    with pytest.raises(FyiError, match="nb201 space only"):
        space_arch("space:classic;cells=1")


def test_distillation_time_is_amortized_on_the_compute_axis(digits, tmp_path):
    import dataclasses

    import fyi_apps as fyi
    from fyi_apps.tasks.nas.report import curve_series

    s = fyi.random_subset(digits, 2)
    s = dataclasses.replace(s, extra={**s.extra, "seconds": 500.0})
    path = tmp_path / "set.safetensors"
    fyi.save_synset(path, s)
    cfg = nas.NasConfig(dataset="digits", proxies=[str(path), "random"], space="mlp:width=8,mlp:width=16,mlp:width=32,"
                        "mlp:width=64", truth="real:10", full_epochs=1, proxy_epochs=2, curve=[1, 2], topk=[2],
                        dsa=False)
    res = nas.run_ranking(cfg, cache_dir=tmp_path / "c", dataset=digits, device="cpu", progress=False)
    entry = res["proxies"][0]
    assert entry["distill_seconds"] == 500.0 and "distill_seconds" not in res["proxies"][1]
    series = {x["label"]: x["points"] for x in curve_series(res)}
    own = [c["seconds"] for c in entry["curve"]]
    assert [p["seconds"] for p in series[entry["label"]]] == pytest.approx([t + 500.0 / 4 for t in own])


def test_scatter_points_can_be_labelled_by_name(ranking, tmp_path):
    from fyi_apps.errors import FyiError
    from fyi_apps.tasks.nas.report import short_name

    _, res, _ = ranking
    assert short_name("nb201:|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|;cells=1") \
        == "30ps10"
    for how in ("name", "none"):
        assert nas.write_report(res, tmp_path / how, name="r", point_labels=how)["png"].stat().st_size > 10_000
    with pytest.raises(FyiError, match="point_labels"):
        nas.write_report(res, tmp_path, point_labels="names")
