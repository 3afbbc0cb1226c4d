"""The chart views: axis switch, links that reproduce a view, MC Dropout and the LR finder."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.dashboard import SMALL_NET, Dashboard

RANGE_TEST_MILLISECONDS = 120_000
CURVE_CHARTS = ["chart-val_accuracy", "chart-val_loss", "chart-accuracy", "chart-loss"]


def test_the_x_axis_switch_changes_every_curve_chart_to_wall_clock_seconds(
    dashboard: Dashboard, finished_pair: list[dict]
) -> None:
    run_id = finished_pair[0]["id"]
    dashboard.open(f"?runs={run_id}")
    epochs = dashboard.wait_for_curve_points("chart-val_accuracy", run_id, 3)
    for chart_id in CURVE_CHARTS:
        assert dashboard.chart_layout(chart_id)["xaxis"]["title"]["text"] == "epoch"

    dashboard.page.get_by_text("Wall-clock time", exact=True).click()

    dashboard.page.wait_for_function(
        "() => document.getElementById('chart-loss').layout.xaxis.title.text"
        " === 'wall-clock seconds'"
    )
    for chart_id in CURVE_CHARTS:
        assert dashboard.chart_layout(chart_id)["xaxis"]["title"]["text"] == "wall-clock seconds"
    seconds = dashboard.curve("chart-val_accuracy", run_id)
    assert seconds is not None and seconds["y"] == epochs["y"]
    assert seconds["x"] != epochs["x"] and seconds["x"] == sorted(seconds["x"])
    assert "x=time" in dashboard.page.url


def test_a_copied_link_reproduces_the_chosen_runs_and_view(
    dashboard: Dashboard, finished_pair: list[dict]
) -> None:
    first, second = (run["id"] for run in finished_pair)
    dashboard.open(f"?runs={first},{second}&x=time&smooth=0.5&layout=grid&metric=loss")

    expect(dashboard.row(first).locator("input.show-run")).to_be_checked()
    expect(dashboard.row(second).locator("input.show-run")).to_be_checked()
    expect(dashboard.page.locator("#chart-side-by-side")).to_be_visible()
    dashboard.page.wait_for_function(
        "() => (document.getElementById('chart-side-by-side').data || []).length >= 4"
    )
    layout = dashboard.chart_layout("chart-side-by-side")
    assert layout["title"]["text"].startswith("Loss per run")
    assert layout["xaxis2"]["matches"] == "x" and layout["yaxis2"]["matches"] == "y"
    assert dashboard.page.locator("#smoothing").input_value() == "0.5"

    dashboard.row(first).locator("input.show-run").uncheck()
    expect(dashboard.page).to_have_url(
        f"{dashboard.base_url}/?runs={second}&x=time&smooth=0.5&layout=grid&metric=loss"
    )


def test_two_runs_overlaid_make_the_dashboard_screenshot(
    dashboard: Dashboard, finished_pair: list[dict], artifacts_dir: Path
) -> None:
    run_ids = [run["id"] for run in finished_pair]
    dashboard.page.set_viewport_size({"width": 1400, "height": 1250})
    dashboard.open(f"?runs={','.join(run_ids)}")
    for run_id in run_ids:
        for chart_id in CURVE_CHARTS:
            dashboard.wait_for_curve_points(chart_id, run_id, 3)
    legend = dashboard.page.locator("#chart-val_accuracy .legendtext").all_text_contents()
    assert {"SELU, 3 epochs", "BatchNorm, 3 epochs", "best epoch"} <= set(legend)
    best = next(t for t in dashboard.chart_traces("chart-val_loss") if t["uid"] == "best-epochs")
    assert best["x"] == [run["best_epoch"] for run in finished_pair]

    target = artifacts_dir / "dashboard.png"
    dashboard.page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 20_000


def test_the_self_normalization_view_plots_each_layer_at_the_chosen_epoch(
    dashboard: Dashboard, finished_pair: list[dict]
) -> None:
    run_ids = [run["id"] for run in finished_pair]
    dashboard.open(f"?runs={','.join(run_ids)}&tab=normalization")
    # The untrained network's statistics come with the runs, before their epochs load.
    dashboard.page.wait_for_function(
        "() => (document.getElementById('chart-activation-std').data || []).length === 2"
        " && document.getElementById('chart-activation-std').layout.title.text"
        ".includes('epoch 3')"
    )
    depth = int(SMALL_NET["depth"])
    for chart_id in ("chart-activation-mean", "chart-activation-std"):
        traces = dashboard.chart_traces(chart_id)
        assert [trace["uid"] for trace in traces] == run_ids
        assert all(trace["x"] == list(range(1, depth + 1)) for trace in traces)
        assert all(len(trace["y"]) == depth for trace in traces)
    assert "epoch 3" in dashboard.chart_layout("chart-activation-std")["title"]["text"]

    dashboard.page.locator("#norm-epoch").fill("1")

    dashboard.page.wait_for_function(
        "() => document.getElementById('chart-activation-mean').layout.title.text"
        ".includes('epoch 1')"
    )
    assert "epoch=1" in dashboard.page.url

    dashboard.page.locator("#norm-epoch").fill("0")

    dashboard.page.wait_for_function(
        "() => document.getElementById('chart-activation-std').layout.title.text"
        ".includes('before training')"
    )
    assert "epoch=0" in dashboard.page.url
    before = {trace["uid"]: trace["y"] for trace in dashboard.chart_traces("chart-activation-std")}
    for run in finished_pair:
        assert before[run["id"]] == pytest.approx(run["initial_activations"]["stds"])


def test_the_mc_dropout_view_draws_confidence_histograms_for_an_alpha_dropout_run(
    dashboard: Dashboard,
) -> None:
    dashboard.open()
    dashboard.set_field("variant", "alpha_dropout")
    dashboard.set_fields(
        {**SMALL_NET, "max_epochs": "2", "mc_samples": "5", "name": "alpha dropout, MC"}
    )
    run_id = dashboard.launch("Train alpha dropout")
    dashboard.wait_for_status(run_id, "succeeded")

    dashboard.open_tab("MC Dropout")
    dashboard.page.locator("#mc-run").select_option(run_id)
    dashboard.page.wait_for_function(
        "() => (document.getElementById('chart-mc-reliability').data || []).length > 0"
    )

    for chart_id in ("chart-mc-deterministic", "chart-mc-monteCarlo"):
        bars = {trace["name"]: trace for trace in dashboard.chart_traces(chart_id)}
        assert set(bars) == {"correct", "wrong"}
        assert all(trace["type"] == "bar" for trace in bars.values())
        assert sum(bars["correct"]["y"]) + sum(bars["wrong"]["y"]) > 0
    title = dashboard.chart_layout("chart-mc-reliability")["title"]["text"]
    assert "ECE deterministic" in title and "MC" in title
    by_samples = dashboard.chart_traces("chart-mc-samples")[0]
    assert by_samples["x"][0] == 1 and len(by_samples["x"]) == len(by_samples["y"]) >= 2
    expect(dashboard.page.locator("#mc-summary")).to_contain_text("MC Dropout accuracy")
    assert "mc=" in dashboard.page.url and "tab=mc-dropout" in dashboard.page.url


def test_the_lr_finder_plots_loss_against_rate_and_fills_the_launch_form(
    dashboard: Dashboard,
) -> None:
    dashboard.open("?tab=lr-finder")
    form = dashboard.page.locator("#lr-form")
    form.locator("#lr-field-variant").select_option("selu")
    form.locator("#lr-field-dataset").select_option("synthetic")
    for name in ("depth", "width", "batch_size"):
        form.locator(f"#lr-field-{name}").fill(SMALL_NET[name])
    form.locator("#lr-field-max_steps").fill("20")

    form.get_by_role("button", name="Run range test").click()

    status = dashboard.page.locator("#lr-status")
    dashboard.page.wait_for_function(
        "() => (document.getElementById('chart-lr-finder').data || []).length > 0"
        " || document.getElementById('lr-status').textContent.includes(' failed: ')",
        timeout=RANGE_TEST_MILLISECONDS,
    )
    assert " failed: " not in (status.text_content() or ""), status.text_content()
    expect(status).to_contain_text("steps")
    layout = dashboard.chart_layout("chart-lr-finder")
    assert layout["xaxis"]["type"] == "log"
    assert layout["xaxis"]["title"]["text"].startswith("learning rate")
    suggested = dashboard.page.locator("#lr-suggested").text_content() or ""
    assert float(suggested) > 0

    dashboard.page.get_by_role("button", name="Use in launch form").click()

    assert dashboard.page.locator("#field-variant").input_value() == "selu"
    assert float(dashboard.page.locator("#field-learning_rate").input_value()) == float(suggested)
